"""The in-cluster audit writer: ImageFacts, PolicyReports, Events and the audit's metrics (`--role audit`)."""
