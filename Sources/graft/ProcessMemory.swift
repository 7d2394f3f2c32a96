import Foundation

/// This process's resident memory, from /proc/self/status (Linux); nil elsewhere.
enum ProcessMemory {
    /// VmHWM: the peak resident set size so far.
    static var peakResidentBytes: Int? { statusField("VmHWM") }
    /// VmRSS: the resident set size now.
    static var residentBytes: Int? { statusField("VmRSS") }

    /// A "Name:   1234 kB" line of /proc/self/status, in bytes.
    private static func statusField(_ name: String) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix(name + ":") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 3, fields[2] == "kB", let kB = Int(fields[1]) else { return nil }
            return kB * 1024
        }
        return nil
    }
}
