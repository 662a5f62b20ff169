"""Vocabularies: the shipped SKOS concept schemes (cancer types, anatomy, modalities, DCAT-AP
controlled vocabularies), loaded in memory with their broader/narrower closures or into the
graph store, and the build that generates them from the corpus."""
