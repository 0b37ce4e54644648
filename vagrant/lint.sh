#!/bin/sh
# make lint's check of the VM's files, with what is installed: `vagrant
# validate` on the Vagrantfile and shellcheck on the shell scripts (the
# VM's, and the repository's own: scripts/ and CI's).
# `scripts/deps.sh test` installs both (vagrant with its libvirt plugin);
# where one is missing its check is skipped with a note, so that `make lint`
# works on a machine with only the demo's packages.
#
# A VM cannot be booted here and needs none: validate reads the Vagrantfile
# without the box (nothing is downloaded) and without starting a provider.
set -eu
cd "$(dirname "$0")"

if command -v shellcheck >/dev/null; then
	shellcheck provision.sh lint.sh ../scripts/*.sh ../.ci/run
else
	echo "lint: shellcheck is not installed; not checking the shell scripts (scripts/deps.sh test installs it)" >&2
fi

if ! command -v vagrant >/dev/null; then
	echo "lint: vagrant is not installed; not validating vagrant/Vagrantfile (scripts/deps.sh test installs it)" >&2
	exit 0
fi
# Offline and without a trace in the tree: no version check over the
# network, and the machine's .vagrant/ directory goes to a temporary place.
export VAGRANT_CHECKPOINT_DISABLE=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export VAGRANT_DOTFILE_PATH="$tmp/.vagrant"
# validate checks the settings of the provider the VM would use, and
# refuses to run when that provider cannot be: VirtualBox is not
# installed on a CI machine, but the libvirt plugin loads without libvirt
# running. With it, the libvirt block is checked as well as the rest;
# without it, everything but the provider blocks.
if vagrant plugin list 2>/dev/null | grep -q '^vagrant-libvirt '; then
	VAGRANT_DEFAULT_PROVIDER=libvirt vagrant validate
else
	echo "lint: no vagrant-libvirt; validating vagrant/Vagrantfile without its provider blocks" >&2
	vagrant validate --ignore-provider
fi
