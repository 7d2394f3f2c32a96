// Header-only: see include/csimd.h.
