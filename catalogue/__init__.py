"""Federated cancer-imaging catalogue: DCAT-AP metadata, DICOM features, feasibility counts."""

__version__ = "0.1.0"
