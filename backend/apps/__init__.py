"""API applications: the callers of the changes API, signing as Alibaba Cloud API Gateway's apps."""
