/// The strings JSON Schema's `format` values describe, as regular languages over characters. Each is a
/// subset of what the format's RFC allows and of what Python's checkers (jsonschema's FormatChecker:
/// `datetime.date.fromisoformat`, `ipaddress`, `uuid.UUID`, rfc3339-validator, rfc3986) accept, so a generated
/// string passes both. Where the RFC allows forms those checkers reject or that need more context (leap
/// seconds, IPv6 zone ids, year 0000) they are left out.
enum StringFormats {
    private static func set(_ ranges: [ClosedRange<UInt32>]) -> CharRegex { .set(CharSet(ranges)) }
    private static func chars(_ s: String) -> CharRegex { .set(CharSet(characters: s)) }
    private static func lit(_ s: String) -> CharRegex { .literal(s) }
    private static func seq(_ parts: CharRegex...) -> CharRegex { .sequence(parts) }
    private static func alt(_ parts: CharRegex...) -> CharRegex { .alternatives(parts) }
    private static func rep(_ r: CharRegex, _ lo: Int, _ hi: Int?) -> CharRegex { .repetition(r, lo, hi) }
    private static func opt(_ r: CharRegex) -> CharRegex { .repetition(r, 0, 1) }

    static let digit = set([0x30...0x39])
    static let nonZero = set([0x31...0x39])
    static let hex = set([0x30...0x39, 0x41...0x46, 0x61...0x66])
    static let alpha = set([0x41...0x5A, 0x61...0x7A])
    static let alnum = set([0x30...0x39, 0x41...0x5A, 0x61...0x7A])

    /// A two-digit number in lo...hi.
    static func twoDigits(_ lo: Int, _ hi: Int) -> CharRegex {
        var options: [CharRegex] = []
        var v = lo
        while v <= hi {
            let tens = v / 10
            let lastInDecade = min(hi, tens * 10 + 9)
            options.append(seq(set([UInt32(0x30 + tens)...UInt32(0x30 + tens)]),
                               set([UInt32(0x30 + v % 10)...UInt32(0x30 + lastInDecade % 10)])))
            v = lastInDecade + 1
        }
        return .alternatives(options)
    }

    /// Years 0001–9999.
    static let year = alt(seq(rep(digit, 3, 3), nonZero), seq(rep(digit, 2, 2), nonZero, digit),
                          seq(digit, nonZero, rep(digit, 2, 2)), seq(nonZero, rep(digit, 3, 3)))
    /// Leap years 0001–9999: divisible by 4, centuries only when divisible by 400.
    static let leapYear: CharRegex = {
        let notCentury = alt(seq(chars("0"), chars("48")), seq(chars("2468"), chars("048")), seq(chars("13579"), chars("26")))
        let quadCentury = alt(seq(chars("0"), chars("48")), seq(chars("2468"), chars("048")), seq(chars("13579"), chars("26")))
        return alt(seq(rep(digit, 2, 2), notCentury), seq(quadCentury, lit("00")))
    }()

    static let date: CharRegex = {
        let long = alt(lit("01"), lit("03"), lit("05"), lit("07"), lit("08"), lit("10"), lit("12"))
        let short = alt(lit("04"), lit("06"), lit("09"), lit("11"))
        return alt(seq(year, lit("-"), long, lit("-"), twoDigits(1, 31)),
                   seq(year, lit("-"), short, lit("-"), twoDigits(1, 30)),
                   seq(year, lit("-02-"), twoDigits(1, 28)),
                   seq(leapYear, lit("-02-29")))
    }()

    static let time: CharRegex = {
        let offset = alt(chars("Zz"), seq(chars("+-"), twoDigits(0, 23), lit(":"), twoDigits(0, 59)))
        return seq(twoDigits(0, 23), lit(":"), twoDigits(0, 59), lit(":"), twoDigits(0, 59),
                   opt(seq(lit("."), rep(digit, 1, nil))), offset)
    }()

    static let dateTime = seq(date, chars("Tt"), time)

    static let uuid = seq(rep(hex, 8, 8), lit("-"), rep(hex, 4, 4), lit("-"), rep(hex, 4, 4), lit("-"),
                          rep(hex, 4, 4), lit("-"), rep(hex, 12, 12))

    /// RFC 5321 dot-atom local part and a hostname domain.
    static let email: CharRegex = {
        let atext = set([0x30...0x39, 0x41...0x5A, 0x61...0x7A]).union(chars("!#$%&'*+/=?^_`{|}~-"))
        let local = seq(rep(atext, 1, nil), rep(seq(lit("."), rep(atext, 1, nil)), 0, nil))
        return seq(local, lit("@"), domain)
    }()

    private static let labelChar = alnum.union(chars("-"))
    private static let label = seq(alnum, opt(seq(rep(labelChar, 0, 61), alnum)))
    /// Labels separated by dots, the last starting with a letter (an all-numeric last label is an address).
    private static let domain = seq(rep(seq(label, lit(".")), 0, nil), alpha, opt(seq(rep(labelChar, 0, 61), alnum)))

    /// At most four labels of at most 61 characters (247 in all, under DNS's 253), built without an
    /// intersection with a length bound, which would cost a counter in every lexer state.
    static let hostname: CharRegex = {
        let short = seq(alnum, opt(seq(rep(labelChar, 0, 59), alnum)))
        let last = seq(alpha, opt(seq(rep(labelChar, 0, 59), alnum)))
        return seq(rep(seq(short, lit(".")), 0, 3), last)
    }()

    static let octet = alt(digit, seq(nonZero, digit), seq(lit("1"), digit, digit), seq(lit("2"), set([0x30...0x34]), digit),
                           seq(lit("25"), set([0x30...0x35])))
    static let ipv4 = seq(octet, lit("."), octet, lit("."), octet, lit("."), octet)

    static let ipv6: CharRegex = {
        let h16 = rep(hex, 1, 4)
        let ls32 = alt(seq(h16, lit(":"), h16), ipv4)
        func groups(_ n: Int) -> CharRegex { rep(seq(h16, lit(":")), n, n) }
        // Up to n groups before "::": h16 (":" h16){0,n-1}, or nothing.
        func before(_ n: Int) -> CharRegex { opt(seq(h16, rep(seq(lit(":"), h16), 0, n - 1))) }
        return alt(seq(groups(6), ls32),
                   seq(lit("::"), groups(5), ls32),
                   seq(opt(h16), lit("::"), groups(4), ls32),
                   seq(before(2), lit("::"), groups(3), ls32),
                   seq(before(3), lit("::"), groups(2), ls32),
                   seq(before(4), lit("::"), h16, lit(":"), ls32),
                   seq(before(5), lit("::"), ls32),
                   seq(before(6), lit("::"), h16),
                   seq(before(7), lit("::")))
    }()

    /// RFC 3986 URI: scheme ":" ("//" authority path-abempty | path-rootless | path-empty) ["?" query] ["#" fragment].
    static let uri: CharRegex = {
        let unreserved = alnum.union(chars("-._~"))
        let subDelims = chars("!$&'()*+,;=")
        let pct = seq(lit("%"), hex, hex)
        let pchar = alt(unreserved, subDelims, chars(":@"), pct)
        let regName = rep(alt(unreserved, subDelims, pct), 0, nil)
        let authority = seq(regName, opt(seq(lit(":"), rep(digit, 0, nil))))
        let segment = rep(pchar, 0, nil)
        let pathAbempty = rep(seq(lit("/"), segment), 0, nil)
        let pathRootless = seq(rep(pchar, 1, nil), rep(seq(lit("/"), segment), 0, nil))
        let scheme = seq(alpha, rep(alnum.union(chars("+-.")), 0, nil))
        let tail = rep(alt(pchar, chars("/?")), 0, nil)
        return seq(scheme, lit(":"), alt(seq(lit("//"), authority, pathAbempty), pathRootless, .empty),
                   opt(seq(lit("?"), tail)), opt(seq(lit("#"), tail)))
    }()

    static func regex(_ format: String) -> CharRegex? {
        switch format {
        case "date-time": return dateTime
        case "date": return date
        case "time": return time
        case "uuid": return uuid
        case "email": return email
        case "ipv4": return ipv4
        case "ipv6": return ipv6
        case "uri": return uri
        case "hostname": return hostname
        default: return nil
        }
    }
}

private extension CharRegex {
    func union(_ other: CharRegex) -> CharRegex {
        if case .set(let a) = self, case .set(let b) = other { return .set(a.union(b)) }
        return .alternatives([self, other])
    }
}
