//go:build tools

// Package tools pins Kubernetes' e2e suite (the testbed's Kubernetes wrapper module's imports,
// hack/testbed/kubernetes/tools.go, plus test/e2e), so `go mod tidy` records every module
// `go test -c k8s.io/kubernetes/test/e2e` needs in go.sum, at the testbed's Kubernetes version.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/test/e2e"
)
