"""Harvesters: one module per source kind, registered in the `catalogue.harvesters` group."""
