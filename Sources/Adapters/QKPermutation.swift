// llama.cpp's converter (convert_hf_to_gguf.py, LlamaModel.permute) stores the rows of
// the Q and K projections reordered for its rotary layout:
//   w.reshape(nHeads, 2, headDim/2, cols).swapaxes(1, 2)
// so within each head GGUF row 2i+j holds HF row j·headDim/2 + i (i < headDim/2, j ∈ {0,1}).
// A LoRA B matrix adds into those same output rows, so it is reordered the same way on
// import and back on export. A is untouched: it acts on the input side.

/// The HF row that GGUF row `row` of a Q or K projection comes from.
func hfRow(ofGGUFRow row: Int, headDim: Int) -> Int {
    let (head, r) = row.quotientAndRemainder(dividingBy: headDim)
    return head * headDim + (r % 2) * (headDim / 2) + r / 2
}

/// dst (GGUF order) ← src (HF order); both (rows, cols) row-major, rows a multiple of headDim.
func permuteRowsHFToGGUF(dst: UnsafeMutablePointer<Float>, src: UnsafePointer<Float>, rows: Int, cols: Int, headDim: Int) {
    for row in 0..<rows {
        (dst + row * cols).update(from: src + hfRow(ofGGUFRow: row, headDim: headDim) * cols, count: cols)
    }
}

/// dst (HF order) ← src (GGUF order): the inverse of `permuteRowsHFToGGUF`.
func permuteRowsGGUFToHF(dst: UnsafeMutablePointer<Float>, src: UnsafePointer<Float>, rows: Int, cols: Int, headDim: Int) {
    for row in 0..<rows {
        (dst + hfRow(ofGGUFRow: row, headDim: headDim) * cols).update(from: src + row * cols, count: cols)
    }
}
