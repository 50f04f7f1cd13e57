#!/bin/sh
# Regenerates the swap header fixtures with util-linux mkswap (2.38.1 made
# the checked-in ones). Each fixture is the start of a freshly made,
# zero-filled image: its first page (4096 bytes), or its first 16 KiB for
# the header made for 16 KiB pages. The device sizes are in the file names
# and in the tests (mm/src/swapfile/header/tests.rs).
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make() { # name size-in-bytes head-bytes mkswap-args...
    name=$1 size=$2 head=$3
    shift 3
    truncate -s "$size" "$tmp/img"
    chmod 600 "$tmp/img"
    mkswap -q "$@" "$tmp/img"
    head -c "$head" "$tmp/img" >"$name"
    rm "$tmp/img"
}
make mkswap-1m-vdb-swap.page 1M 4096 -U 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 -L vdb-swap
make mkswap-40k-nolabel.page 40K 4096 -U 01234567-89ab-cdef-0123-456789abcdef
make mkswap-1g-swap1.page 1G 4096 -U c0ffee00-dead-beef-0000-000000000001 -L swap1
make mkswap-64k-longlabel.page 64K 4096 -U 11111111-2222-3333-4444-555555555555 -L 0123456789abcdefXYZ
make mkswap-1m-16k-pages.head 1M 16384 -p 16384 -U 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 -L big-pages
