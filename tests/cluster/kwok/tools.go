//go:build tools

// Package tools pins the command scripts/control_plane.py builds with `go build`.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
