"""Small ConfigurableResources, each with a local and a production variant (see pipelines.environment)."""
