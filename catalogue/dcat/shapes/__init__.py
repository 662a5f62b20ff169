"""SHACL shapes shipped as package data (README.md beside them gives the full provenance).

`dcat-ap-3.0.1_*.ttl`: © European Union, SEMIC; CC-BY-4.0. Byte-identical copies of
`releases/3.0.1/html/shacl/{shapes,range,shapes_recommended}.ttl` of SEMICeu/DCAT-AP at commit
7c531da7f154794da620fd0e57a3e8afe0286c0f. `healthdcat-ap-r8-*.ttl` and `imaging-extension.ttl`
are this project's own (Apache-2.0): not the official HealthDCAT-AP shapes.
"""
