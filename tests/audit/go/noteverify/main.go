// Command noteverify checks a signed note with Go's golang.org/x/mod/sumdb/note, the reference
// verifier that Custos's checkpoints must satisfy (issue 3).
//
//	noteverify VERIFIER-KEY NOTE-FILE
//
// It prints the verified note text and exits 0; exits 1 if the note does not verify with the key,
// and 2 if the verifier key itself is rejected or the arguments are wrong. Built offline from
// Debian's golang-golang-x-mod-dev, as tests/audit/test_note_interop.py does:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o /tmp/noteverify .
package main

import (
	"fmt"
	"os"

	"golang.org/x/mod/sumdb/note"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: noteverify VERIFIER-KEY NOTE-FILE")
		os.Exit(2)
	}
	verifier, err := note.NewVerifier(os.Args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "bad verifier key: %v\n", err)
		os.Exit(2)
	}
	msg, err := os.ReadFile(os.Args[2])
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot read note: %v\n", err)
		os.Exit(2)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		fmt.Fprintf(os.Stderr, "note rejected: %v\n", err)
		os.Exit(1)
	}
	fmt.Print(n.Text)
}
