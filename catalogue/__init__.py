"""Federated cancer-imaging catalogue: DCAT-AP metadata, DICOM-derived features, feasibility counts."""

__version__ = "0.1.0"
