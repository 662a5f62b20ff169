// Every GraphQL operation the pages send, one exported template literal each (no interpolation):
// tests/e2e/test_web_pages.py validates them against the schema.

export const SEARCH = `
query Search($search: String, $filter: DatasetFilter, $after: String, $first: Int!) {
  datasets(search: $search, filter: $filter, after: $after, first: $first) {
    totalCount
    facets { field values { value label count } }
    edges { cursor node { identifier title description modalities cancerTypes provider { id name } } }
    pageInfo { hasNextPage endCursor }
  }
}`;

export const CONCEPTS = `
query Concepts($search: String!) {
  concepts(search: $search, first: 8) { curie label scheme matched }
}`;

export const DATASET = `
query Dataset($provider: ID!, $identifier: String!) {
  dataset(provider: $provider, identifier: $identifier) {
    identifier iri title description keywords license accessRights doi landingPage
    modalities cancerTypes bodySites
    provider { id name homepage }
    publisher { name iri }
    contactPoints { name email url }
    distributions { iri title description accessURLs downloadURLs mediaType format byteSize license }
    concepts(mostSpecific: true) { curie label scheme iri }
    summary {
      numberOfUniqueIndividuals numberOfRecords minTypicalAge maxTypicalAge
      modalities bodyParts manufacturers
    }
    validation { conforms violations runId checkedAt }
  }
}`;

export const PROVIDERS = `
query Providers { providers { id name homepage } }`;

export const FEASIBILITY = `
query Feasibility($query: FeasibilityQuery!, $strata: [[StratumValue!]!]) {
  feasibility(query: $query, strata: $strata, explain: true) {
    subjects { value suppressed precision }
    studies { value suppressed precision }
    series { value suppressed precision }
    byProvider {
      provider { id name }
      subjects { value suppressed precision }
      studies { value suppressed precision }
      series { value suppressed precision }
    }
    byDataset {
      dataset { identifier title provider { id } }
      subjects { value suppressed precision }
      studies { value suppressed precision }
      series { value suppressed precision }
    }
    strata { dimensions cells { values subjects { value suppressed precision } } }
    explanation { normalisedQuery disclosure epsilonSpent }
  }
}`;

export const UNMAPPED = `
query Unmapped {
  unmappedValues(first: 100) {
    provider field value
    series { value suppressed precision }
    subjects { value suppressed precision }
    proposals { object objectLabel predicate status confidence justification }
  }
}`;

export const APPROVE = `
mutation Approve($provider: String!, $field: String!, $value: String!, $object: String!) {
  approveMapping(provider: $provider, field: $field, value: $value, object: $object) {
    version mapping { status object }
  }
}`;

export const REJECT = `
mutation Reject($provider: String!, $field: String!, $value: String!, $object: String!) {
  rejectMapping(provider: $provider, field: $field, value: $value, object: $object) {
    version mapping { status object }
  }
}`;

export const RUNS = `
query Runs {
  harvestRuns(last: 10) {
    id started ended ok state mappingVersion
    sources {
      provider source kind ok error complete listed new updated unchanged deleted rejected series
      warnings
    }
  }
}`;

export const PROVIDER_DATASETS = `
query ProviderDatasets($provider: ID!) {
  datasets(filter: { providers: [$provider] }, first: 100, orderBy: TITLE) {
    edges { node { identifier title } }
  }
}`;

export const REPORTS = `
query Reports($provider: ID!, $identifier: String!) {
  validationReports(provider: $provider, identifier: $identifier, last: 10) {
    runId conforms violations report
  }
}`;
