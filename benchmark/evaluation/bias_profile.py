"""The training data's own bias profile: how its labels (every declared attribute's true group, and the emotion) are
represented and how they co-occur, with the measures of the dataset-bias literature as implemented by the
``dataset-bias-metrics`` package (Dominguez-Catena et al.; optional extra ``fairness``).

- **representation** of each label column (over images): richness (groups present), effective number of groups
  (exp of Shannon entropy), Shannon evenness (1 = perfectly balanced), imbalance ratio (largest / smallest group) and
  Berger-Parker index (share of the largest group);
- **co-occurrence** of each pair of label columns (every attribute with the emotion, and the attributes with each
  other): per combination of groups, normalised pointwise mutual information (NPMI, -1 never together, 0
  independent, 1 always together), Ducher's Z and Lewontin's D; the profile keeps every combination and the report
  shows the largest |value| per pair and measure.

A balanced lab design (every person shows every expression, FACES and ADFES) scores 0 on every attribute x emotion
co-occurrence: what a corrector learns from such data is the frozen models' bias, not the labels'. A user's
unbalanced dataset shows here what the corrector was taught.
"""

from __future__ import annotations

import itertools

import pandas as pd

from benchmark.core.outputs import OutputsTable
from benchmark.infra.optional import require

__all__ = ["CO_OCCURRENCE", "REPRESENTATION", "profile"]

#: measure name -> dataset_bias_metrics function name (one column)
REPRESENTATION: dict[str, str] = {"richness": "richness", "effective_number": "ens",
                                  "shannon_evenness": "shannon_evenness", "imbalance_ratio": "imbalanceRatio",
                                  "berger_parker": "bergerparker_index"}
#: measure name -> dataset_bias_metrics function name (two columns, one value per combination of groups)
CO_OCCURRENCE: dict[str, str] = {"npmi": "npmi", "duchers_z": "duchersz", "lewontins_d": "lewontinsd"}


def _label_columns(table: OutputsTable) -> list[str]:
    """The dataset's declared attributes whose truth the table carries (a sim table may lack FACES' age groups), and
    the emotion."""
    return [a for a in table.design.attributes if a in table.frame.columns] + ["emotion"]


def profile(tables: dict[str, OutputsTable]) -> pd.DataFrame:
    """The bias profile of each dataset's labels.

    Returns
    -------
    DataFrame with columns dataset, kind (representation | co-occurrence), labels (``gender`` or ``gender x emotion``),
    measure, row (group of the first column; empty for representation), column (group of the second), value, and
    n_images.
    """
    require("dataset_bias_metrics", user="the training data's bias profile")
    import dataset_bias_metrics as dbm

    rows = []
    for name, table in sorted(tables.items()):
        columns = _label_columns(table)
        labels = table.frame[columns].astype(str)
        n = len(labels)
        for column in columns:
            for measure, function in REPRESENTATION.items():
                rows.append({"dataset": name, "kind": "representation", "labels": column, "measure": measure,
                             "row": "", "column": "", "value": float(getattr(dbm, function)(labels, column)),
                             "n_images": n})
        for first, second in itertools.combinations(columns, 2):
            for measure, function in CO_OCCURRENCE.items():
                values = getattr(dbm, function)(labels, first, second)
                for row_label, series in values.iterrows():
                    for column_label, value in series.items():
                        rows.append({"dataset": name, "kind": "co-occurrence", "labels": f"{first} x {second}",
                                     "measure": measure, "row": str(row_label), "column": str(column_label),
                                     "value": float(value), "n_images": n})
    return pd.DataFrame(rows)
