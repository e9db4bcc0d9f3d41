"""Developer and machine tools, apart from the library: benchmarks, scaling curves, the doctor, GPU and detector checks."""
