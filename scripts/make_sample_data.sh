#!/usr/bin/env bash
# Regenerate Resources/SampleData (the bundled sample case): one case per protocol. The two
# knee protocols share seed, size and therefore anatomy and maps.
set -euo pipefail
cd "$(dirname "$0")/.."
Q=".venv/bin/q2mri"
OUT=Resources/SampleData
rm -rf "$OUT"/knee-vfa "$OUT"/knee-t2star "$OUT"/liver-me "$OUT"/brain-qiu
$Q simulate --phantom knee --cases 1 --seed 7 --protocol knee-vfa --slices 6 --matrix 96 --snr 100 --compact-bits 13 --quiet --out "$OUT/knee-vfa"
$Q simulate --phantom knee --cases 1 --seed 7 --protocol knee-t2star --slices 6 --matrix 96 --snr 100 --compact-bits 13 --quiet --out "$OUT/knee-t2star"
$Q simulate --phantom liver --cases 1 --seed 7 --protocol liver-me --slices 4 --matrix 80 --snr 100 --compact-bits 13 --quiet --out "$OUT/liver-me"
$Q simulate --phantom brain --cases 1 --seed 7 --protocol brain-qiu --slices 2 --snr 100 --compact-bits 13 --quiet --out "$OUT/brain-qiu"
du -sh "$OUT"
