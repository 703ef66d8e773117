"""Resource changes: requests for cloud resources, planned into steps that plugins carry out."""
