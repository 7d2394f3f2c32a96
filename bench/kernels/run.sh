#!/usr/bin/env bash
# Builds and runs bandwidth.c (memory) against the project's int16 kernel, peak.c
# (arithmetic), blocking.c (why the batched f32 product is register-blocked),
# single_row.c (the exact single-stream product's ceiling), interleaved_row.c (that
# ceiling with rows interleaved eight at a time) and interleaved_batch.c (the project's
# interleaved batch kernels, activation rows in lanes or broadcast) and int8_batch.c (the
# --activations int8 kernels, Q4_1 and Q8_0, against the exact f32 ones; clang, as SwiftPM
# compiles the project's C) and lora_int8.c (the int8 adapters' integer side path against
# widening to f32). Never in CI (timing).
set -euo pipefail
cd "$(dirname "$0")/../.."
cc -O3 -mavx2 -mfma -mf16c -ffp-contract=off -pthread -I Sources/CSIMD/include \
   bench/kernels/bandwidth.c Sources/CSIMD/dot_i16.c -o /tmp/graft-bandwidth
/tmp/graft-bandwidth
cc -O3 -mavx2 -mfma -ffp-contract=off -pthread bench/kernels/peak.c -o /tmp/graft-peak
/tmp/graft-peak
cc -O3 -mavx2 -mfma -mf16c -ffp-contract=off bench/kernels/blocking.c -o /tmp/graft-blocking
/tmp/graft-blocking
cc -O3 -mavx2 -mfma -mf16c -ffp-contract=off -pthread bench/kernels/single_row.c -o /tmp/graft-single-row -lm
/tmp/graft-single-row
cc -O3 -mavx2 -mfma -mf16c -ffp-contract=off -pthread bench/kernels/interleaved_row.c -o /tmp/graft-interleaved-row -lm
/tmp/graft-interleaved-row
cc -O3 -mavx2 -mfma -mf16c -ffp-contract=off -I Sources/CSIMD/include -I Sources/CSIMD \
   bench/kernels/interleaved_batch.c Sources/CSIMD/interleaved.c -o /tmp/graft-interleaved-batch
/tmp/graft-interleaved-batch
clang -O3 -mavx2 -mfma -mf16c -ffp-contract=off -pthread -I Sources/CSIMD/include -I Sources/CSIMD \
   bench/kernels/int8_batch.c Sources/CSIMD/interleaved.c Sources/CSIMD/interleaved_int8.c -o /tmp/graft-int8-batch -lm
/tmp/graft-int8-batch
clang -O3 -mavx2 -mfma -mf16c -ffp-contract=off -pthread -I Sources/CSIMD/include -I bench/kernels \
   bench/kernels/lora_int8.c Sources/CSIMD/lora_int8.c -o /tmp/graft-lora-int8
/tmp/graft-lora-int8
