// Package casekit holds what every module's reference-case runner shares
// (the RunCase functions behind `foldkit run-module`): reading a case's JSON
// meta, reading its inputs "in/<name>" and cotangents "in/cot_<name>" in the
// requested dtype with their shapes checked, writing "out/<name>",
// "grad/in/<name>" and "grad/params/<name>" into a result set, and refusing a
// case whose "params/" or "in/" keys were not all read.
//
// A Case records the first error it meets, as bufio.Scanner does: after it
// every reading or writing call does nothing (and returns nil or zero), and
// Err or Result reports it. Errors start with the runner's prefix
// ("ipa: RunCase: ...") and name the key; errors about the case itself (its
// meta, dtype, kind or unused keys) also wrap the runner's configuration
// error.
//
// The module computations are not here: each runner still decides what the
// case's inputs mean and calls its own Forward and Backward.
package casekit
