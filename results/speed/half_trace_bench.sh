#!/usr/bin/env bash
B=/work/main/build/tools/cellc/cellc
for rep in 1 2; do
for cell in pbrc plastic_gru_clip; do
  for mode in f32 f16vf8 f16vf16; do
    rm -rf /tmp/hb
    unset CELLC_HALF_STATE CELLC_HALF_VF
    case $mode in f16vf8) export CELLC_HALF_STATE=hebb CELLC_HALF_VF=8;; f16vf16) export CELLC_HALF_STATE=hebb CELLC_HALF_VF=16;; esac
    $B run /work/main/experiments/copy_first.toml --set cell.file=../cells/$cell.cell --set train.max_steps=200 --no-plot --out /tmp/hb > /tmp/hb.log 2>&1
    python3 - "$cell" "$mode" <<'PY'
import csv,sys
r=list(csv.DictReader(open('/tmp/hb/metrics.csv')))
r=[x for x in r if x['phase']=='train']
a=[x for x in r if int(x['step'])==50][0]; b=r[-1]
print(sys.argv[1], sys.argv[2], 'steady steps/s %.2f'%((int(b['step'])-50)/(float(b['seconds'])-float(a['seconds']))), 'loss', b['loss'])
PY
  done
done
done
