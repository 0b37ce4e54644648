#!/bin/sh
# The steps of natlab's GitHub Action (action.yml), one per argument:
#
#   plan     which natlab to install: the release asked for, or the
#            action's own source; says whether Go must be set up for it
#   install  puts natlab on the PATH of the job's later steps, and the
#            Debian/Ubuntu packages the scenarios need
#   run      natlab run of the scenarios, with JUnit and JSON reports
#
# They read GitHub's variables (GITHUB_ACTION_PATH, GITHUB_ACTION_REF,
# GITHUB_OUTPUT, GITHUB_PATH, RUNNER_ARCH, RUNNER_TEMP) and the action's
# inputs (INPUT_*), so that they run the same outside GitHub: the tests run
# them on a plain machine. NATLAB_RELEASES is where releases are fetched
# from (GitHub's release downloads by default).
set -eu

releases=${NATLAB_RELEASES:-https://github.com/natlab/natlab/releases/download}
action=${GITHUB_ACTION_PATH:-$(cd "$(dirname "$0")/.." && pwd)}

fail() {
	echo "natlab action: $*" >&2
	exit 1
}

# output sets one of the step's outputs.
output() {
	[ -n "${GITHUB_OUTPUT:-}" ] || fail "GITHUB_OUTPUT is not set: run from a GitHub workflow, or set it to a file"
	echo "$1=$2" >>"$GITHUB_OUTPUT"
}

# as_root runs its arguments as root: directly when the job is root,
# through sudo (which hosted runners allow without a password) otherwise.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	else
		sudo -n "$@"
	fi
}

# is_release says whether $1 names a release: v1.2.3, v1.2.3-rc.1.
is_release() {
	printf '%s\n' "$1" | grep -Eq '^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$'
}

plan() {
	version=${INPUT_VERSION:-}
	if [ -z "$version" ]; then
		# Pinned to a release, that release; pinned to a major tag (v1),
		# a branch or a commit, the source the workflow pinned.
		if is_release "${GITHUB_ACTION_REF:-}"; then
			version=$GITHUB_ACTION_REF
		else
			version=source
		fi
	fi
	if [ "$version" != source ] && ! is_release "$version"; then
		fail "version \"$version\" is neither a release (v1.2.3) nor \"source\""
	fi
	need_go=false
	if [ "$version" = source ] && ! command -v go >/dev/null 2>&1; then
		need_go=true
	fi
	echo "natlab action: natlab $version"
	output version "$version"
	output need-go "$need_go"
}

arch() {
	case "${RUNNER_ARCH:-$(uname -m)}" in
	X64 | x86_64 | amd64) echo amd64 ;;
	ARM64 | aarch64 | arm64) echo arm64 ;;
	*) fail "no natlab for this machine's architecture, ${RUNNER_ARCH:-$(uname -m)}: natlab is released for amd64 and arm64" ;;
	esac
}

install() {
	[ "$(uname -s)" = Linux ] || fail "natlab runs on Linux only, not $(uname -s)"
	version=${INPUT_VERSION:?plan sets INPUT_VERSION}
	dir=${RUNNER_TEMP:-/tmp}/natlab-bin
	mkdir -p "$dir"
	if [ "$version" = source ]; then
		ref=${GITHUB_ACTION_REF:-dev}
		echo "natlab action: building natlab from $action ($ref)"
		(cd "$action" && CGO_ENABLED=0 go build -trimpath \
			-ldflags "-X github.com/natlab/natlab/internal/buildinfo.version=$ref" \
			-o "$dir/natlab.new" ./cmd/natlab) || fail "building natlab from $action failed"
	else
		name=natlab-$version-linux-$(arch)
		tmp=$(mktemp -d)
		trap 'rm -rf "$tmp"' EXIT
		echo "natlab action: fetching $releases/$version/$name"
		curl -fsSL --retry 3 -o "$tmp/$name" "$releases/$version/$name" ||
			fail "could not fetch $name of release $version from $releases"
		curl -fsSL --retry 3 -o "$tmp/SHA256SUMS" "$releases/$version/SHA256SUMS" ||
			fail "could not fetch the SHA256SUMS of release $version from $releases"
		# Only the binary's own line: sha256sum -c would want every file.
		grep " $name\$" "$tmp/SHA256SUMS" >"$tmp/sum" || fail "release $version's SHA256SUMS has no line for $name"
		(cd "$tmp" && sha256sum -c --status sum) || fail "$name does not match release $version's SHA256SUMS"
		mv "$tmp/$name" "$dir/natlab.new"
	fi
	chmod 755 "$dir/natlab.new"
	"$dir/natlab.new" version >/dev/null 2>&1 || fail "the natlab fetched does not run on this machine"
	mv "$dir/natlab.new" "$dir/natlab"
	"$dir/natlab" version

	missing=""
	for p in ${INPUT_PACKAGES:-}; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		echo "natlab action: installing$missing"
		# The list is words on purpose.
		# shellcheck disable=SC2086
		{ as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing; } >&2 ||
			fail "could not install$missing"
	fi

	[ -z "${GITHUB_PATH:-}" ] || echo "$dir" >>"$GITHUB_PATH"
	output natlab "$dir/natlab"
	output version "$("$dir/natlab" version | sed -n '1s/^natlab //p' | cut -d' ' -f1)"
}

run() {
	natlab=${NATLAB:?install sets NATLAB}
	[ -n "${INPUT_SCENARIOS:-}" ] || fail "no scenarios to run"
	# The scenarios and the arguments are words, and the scenarios may be
	# globs: both are split and expanded here, as a shell would.
	# shellcheck disable=SC2086
	set -- $INPUT_SCENARIOS
	for s in "$@"; do
		case $s in
		*'*'* | *'?'* | *'['*) fail "no file matches $s" ;;
		esac
	done
	# shellcheck disable=SC2086
	as_root "$natlab" run "$@" --junit "${INPUT_JUNIT:-natlab.xml}" --json "${INPUT_JSON:-natlab.json}" ${INPUT_ARGS:-}
}

case "${1:-}" in
plan) plan ;;
install) install ;;
run) run ;;
*)
	echo "usage: scripts/action.sh plan|install|run (the steps of action.yml)" >&2
	exit 2
	;;
esac
