#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Whole-file reads and writes on POSIX calls, so failures carry strerror's reason
// ("Permission denied") rather than Foundation's dump of an error object.

func fileExists(_ path: String) -> Bool {
    access(path, F_OK) == 0
}

func readFile(_ path: String) throws(AdapterError) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else {
        if errno == ENOENT { throw .missingFile(path: path, hint: nil) }
        throw .cannotRead(path: path, reason: lastError())
    }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n >= 0 else { throw .cannotRead(path: path, reason: lastError()) }
        if n == 0 { return bytes }
        bytes += chunk[0..<n]
    }
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws(AdapterError) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw .cannotWrite(path: path, reason: lastError()) }
    defer { close(fd) }
    var written = 0
    while written < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { throw .cannotWrite(path: path, reason: lastError()) }
        written += n
    }
}

/// mkdir -p: creates `path` and any missing parents.
func makeDirectories(_ path: String) throws(AdapterError) {
    var prefix = path.hasPrefix("/") ? "/" : ""
    for component in path.split(separator: "/") {
        prefix += component + "/"
        var info = stat()
        if stat(prefix, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR { continue }
        guard mkdir(prefix, 0o755) == 0 || errno == EEXIST else {
            throw .cannotWrite(path: String(prefix.dropLast()), reason: lastError())
        }
    }
}

private func lastError() -> String {
    String(cString: strerror(errno))
}
