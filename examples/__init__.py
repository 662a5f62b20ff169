"""Examples shipped with the catalogue; `examples.demo` builds the demo from real IDC data."""
