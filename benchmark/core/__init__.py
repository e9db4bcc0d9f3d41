"""The domain: label orders, dataset designs, the settings types, the outputs and predictions tables, the protocol's splits, the paper's metrics and numbers. Imports only infra."""
