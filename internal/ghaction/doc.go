// Package ghaction holds the tests of natlab's GitHub Action: action.yml
// at the repository's root and the script its steps run,
// scripts/action.sh. The script reads GitHub's variables and the action's
// inputs from its environment, so the tests run it here as a workflow's
// steps would, with the network steps this machine can take: a release
// fetched from a server on loopback, natlab built from the source, and
// natlab run of a scenario.
package ghaction
