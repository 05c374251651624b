"""Data layer: schemas, the Parquet store and its manifests, importers and the synthetic market."""
