package casekit

import "errors"

// ErrGradBackend is returned (wrapped) when a case asks for gradients on a
// backend other than the CPU: the modules' backward passes run on the CPU.
var ErrGradBackend = errors.New("gradients are computed on the cpu backend only")
