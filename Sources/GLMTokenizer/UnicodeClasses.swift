/// Unicode properties the pre-tokenizer regexes test, as one bit mask per scalar: bit `i` (0...29) is set
/// when the scalar's General_Category is category `i` below, bit 30 when it has the White_Space property,
/// bit 31 when onig's `\w` matches it.
///
/// Rust `onig` (the engine HF tokenizers runs `Split` patterns on) and Python `regex` define `\p{L}`, `\p{N}`,
/// `\p{P}`... by General_Category and `\s` by White_Space; these bits give every such class as one mask test.
enum UnicodeClasses {
    // General_Category bit indices.
    static let lu = 0, ll = 1, lt = 2, lm = 3, lo = 4
    static let mn = 5, mc = 6, me = 7
    static let nd = 8, nl = 9, no = 10
    static let pc = 11, pd = 12, ps = 13, pe = 14, pi = 15, pf = 16, po = 17
    static let sm = 18, sc = 19, sk = 20, so = 21
    static let zs = 22, zl = 23, zp = 24
    static let cc = 25, cf = 26, cs = 27, co = 28, cn = 29
    static let whiteSpaceBit: UInt32 = 1 << 30

    static func mask(_ categories: Int...) -> UInt32 { categories.reduce(0) { $0 | (1 << UInt32($1)) } }

    static let letter = mask(lu, ll, lt, lm, lo)
    static let mark = mask(mn, mc, me)
    static let number = mask(nd, nl, no)
    static let punctuation = mask(pc, pd, ps, pe, pi, pf, po)
    static let symbol = mask(sm, sc, sk, so)
    static let separator = mask(zs, zl, zp)
    static let other = mask(cc, cf, cs, co, cn)
    /// onig's `\w`, measured against HF tokenizers on every assigned code point below U+3400 and samples
    /// above: Alphabetic, Mark, Decimal_Number, Connector_Punctuation, plus `¹²³¼½¾` from onig's Latin-1
    /// table (Python `regex` differs: it adds Join_Control and leaves those six out).
    static let wordBit: UInt32 = 1 << 31
    static let word = wordBit

    /// The mask for a `\p{...}` name (General_Category names, long and short, and White_Space), or nil.
    static func mask(forProperty name: String) -> UInt32? {
        let key = String(name.lowercased().filter { $0 != "_" && $0 != " " && $0 != "-" })
        switch key {
        case "l", "letter": return letter
        case "lu", "uppercaseletter": return mask(lu)
        case "ll", "lowercaseletter": return mask(ll)
        case "lt", "titlecaseletter": return mask(lt)
        case "lm", "modifierletter": return mask(lm)
        case "lo", "otherletter": return mask(lo)
        case "l&", "lc", "casedletter": return mask(lu, ll, lt)
        case "m", "mark", "combiningmark": return mark
        case "mn", "nonspacingmark": return mask(mn)
        case "mc", "spacingmark": return mask(mc)
        case "me", "enclosingmark": return mask(me)
        case "n", "number": return number
        case "nd", "decimalnumber", "digit": return mask(nd)
        case "nl", "letternumber": return mask(nl)
        case "no", "othernumber": return mask(no)
        case "p", "punctuation", "punct": return punctuation
        case "pc", "connectorpunctuation": return mask(pc)
        case "pd", "dashpunctuation": return mask(pd)
        case "ps", "openpunctuation": return mask(ps)
        case "pe", "closepunctuation": return mask(pe)
        case "pi", "initialpunctuation": return mask(pi)
        case "pf", "finalpunctuation": return mask(pf)
        case "po", "otherpunctuation": return mask(po)
        case "s", "symbol": return symbol
        case "sm", "mathsymbol": return mask(sm)
        case "sc", "currencysymbol": return mask(sc)
        case "sk", "modifiersymbol": return mask(sk)
        case "so", "othersymbol": return mask(so)
        case "z", "separator": return separator
        case "zs", "spaceseparator": return mask(zs)
        case "zl", "lineseparator": return mask(zl)
        case "zp", "paragraphseparator": return mask(zp)
        case "c", "other": return other
        case "cc", "control", "cntrl": return mask(cc)
        case "cf", "format": return mask(cf)
        case "cs", "surrogate": return mask(cs)
        case "co", "privateuse": return mask(co)
        case "cn", "unassigned": return mask(cn)
        case "whitespace", "space", "wspace": return whiteSpaceBit
        case "word", "w": return word
        case "alnum": return letter | mask(nd)
        default: return nil
        }
    }

    /// Bits for the Basic Multilingual Plane, computed once (about 10 ms); other planes on demand.
    private static let table: [UInt32] = (0..<0x10000).map { computeBits(UInt32($0)) }

    @inline(__always)
    static func bits(_ scalar: UInt32) -> UInt32 {
        if scalar < 0x10000 { return table.withUnsafeBufferPointer { $0[Int(scalar)] } }
        return computeBits(scalar)
    }

    static func computeBits(_ value: UInt32) -> UInt32 {
        guard let scalar = Unicode.Scalar(value) else { return 1 << UInt32(cs) }
        let p = scalar.properties
        let category: Int
        switch p.generalCategory {
        case .uppercaseLetter: category = lu
        case .lowercaseLetter: category = ll
        case .titlecaseLetter: category = lt
        case .modifierLetter: category = lm
        case .otherLetter: category = lo
        case .nonspacingMark: category = mn
        case .spacingMark: category = mc
        case .enclosingMark: category = me
        case .decimalNumber: category = nd
        case .letterNumber: category = nl
        case .otherNumber: category = no
        case .connectorPunctuation: category = pc
        case .dashPunctuation: category = pd
        case .openPunctuation: category = ps
        case .closePunctuation: category = pe
        case .initialPunctuation: category = pi
        case .finalPunctuation: category = pf
        case .otherPunctuation: category = po
        case .mathSymbol: category = sm
        case .currencySymbol: category = sc
        case .modifierSymbol: category = sk
        case .otherSymbol: category = so
        case .spaceSeparator: category = zs
        case .lineSeparator: category = zl
        case .paragraphSeparator: category = zp
        case .control: category = cc
        case .format: category = cf
        case .surrogate: category = cs
        case .privateUse: category = co
        case .unassigned: category = cn
        @unknown default: category = cn
        }
        let isWord = p.isAlphabetic || category == nd || category == pc || (category >= mn && category <= me)
            || [0xB2, 0xB3, 0xB9, 0xBC, 0xBD, 0xBE].contains(value)
        return (1 << UInt32(category)) | (p.isWhitespace ? whiteSpaceBit : 0) | (isWord ? wordBit : 0)
    }

    /// Simple case folding as far as the stdlib exposes it: a scalar that changes when case-folded maps to
    /// the lowercase of its uppercase when both are single scalars (`ſ`→`s`, Kelvin sign→`k`, `S`→`s`).
    static func simpleFold(_ value: UInt32) -> UInt32 {
        guard let scalar = Unicode.Scalar(value), scalar.properties.changesWhenCaseFolded else { return value }
        let upper = scalar.properties.uppercaseMapping.unicodeScalars
        guard upper.count == 1, let u = upper.first else {
            let lower = scalar.properties.lowercaseMapping.unicodeScalars
            return lower.count == 1 ? (lower.first?.value ?? value) : value
        }
        let lower = u.properties.lowercaseMapping.unicodeScalars
        return lower.count == 1 ? (lower.first?.value ?? value) : value
    }
}
