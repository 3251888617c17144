"""The KServe v2 gRPC protocol: the vendored .proto and the modules generated from it."""
