#!/bin/sh
# Prints the path of a go command of at least Go 1.26, which natlab needs.
# If none is installed (Debian 12 ships 1.19), the toolchain is fetched from
# the Go module proxy into .tools/go, the way the go command itself fetches
# toolchains (it needs curl and unzip: scripts/deps.sh installs them).
set -eu
cd "$(dirname "$0")/.."
want_go=1.26.8

go_ok() {
	v=$("$1" env GOVERSION 2>/dev/null) || return 1
	v=${v#go}
	major=${v%%.*}; rest=${v#*.}; minor=${rest%%.*}
	[ "$major" -gt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -ge 26 ]; }
}

for g in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go .tools/go/bin/go; do
	if [ -n "$g" ] && [ -x "$g" ] && go_ok "$g"; then
		echo "$g"
		exit 0
	fi
done

arch=$(dpkg --print-architecture)
proxy=${GOPROXY:-https://proxy.golang.org}
proxy=${proxy%%,*}
url="$proxy/golang.org/toolchain/@v/v0.0.1-go$want_go.linux-$arch.zip"
echo "deps: fetching Go $want_go from $url" >&2
mkdir -p .tools
tmp=$(mktemp -d)
curl -fsSL -o "$tmp/go.zip" "$url"
unzip -q "$tmp/go.zip" -d "$tmp"
rm -rf .tools/go
mv "$tmp/golang.org/toolchain@v0.0.1-go$want_go.linux-$arch" .tools/go
chmod -R u+w .tools/go
rm -rf "$tmp"
echo "$PWD/.tools/go/bin/go"
