"""RDF namespaces of DCAT-AP, HealthDCAT-AP and the catalogue's imaging extension."""

from rdflib import Namespace
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, RDFS, SKOS, XSD

HEALTHDCATAP = Namespace("http://healthdataportal.eu/ns/health#")
ADMS = Namespace("http://www.w3.org/ns/adms#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
DCATAP = Namespace("http://data.europa.eu/r5r/")
CIM = Namespace("https://w3id.org/cancer-imaging-catalogue/ns#")
"""The imaging extension: cancer type, tumour site (body site) and modality of a dataset."""

__all__ = [
    "ADMS",
    "CIM",
    "DCAT",
    "DCATAP",
    "DCTERMS",
    "FOAF",
    "HEALTHDCATAP",
    "RDF",
    "RDFS",
    "SKOS",
    "VCARD",
    "XSD",
]
