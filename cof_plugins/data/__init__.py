"""The data engine behind ``cof data ...``: plain Python over PIL, JSON and (for parquet) pyarrow.

Modules, one concept each:

- ``rows``: the canonical row layout, reading and writing it;
- ``annotations``: grounded / benchmark annotations (question, options, answer, image, bbox);
- ``policy`` and ``thinking``: when a trajectory zooms, and the words it thinks;
- ``synthesize``: annotations -> adaptive CoF trajectories (frames and crops written to disk);
- ``validate``: every check a row must pass before SFT or RL sees it;
- ``boxes`` and ``layout``: tool-call boxes and crop placement inside assistant text;
- ``frames``: a row's frame, from its first image;
- ``styles``: other projects' trajectory formats, one reader per style; ``convert`` runs them;
- ``sources``, ``snapshot``, ``prepare`` and ``benchmarks``: released datasets -> our layout;
- ``parquet``: canonical rows or annotations -> verl RLHFDataset parquet;
- ``provenance`` and ``report``: what made an output, and terminal tables.

Nothing here imports a trainer, so the engine runs wherever the data lives.
"""
