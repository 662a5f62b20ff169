"""The demo: providers built from idc-index-data (NCI Imaging Data Commons, MIT)."""
