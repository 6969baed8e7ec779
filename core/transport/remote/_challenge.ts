/**
 * `WWW-Authenticate` parsing (RFC 7235): one header value may hold several challenges, each a
 * scheme followed by comma-separated `name=value` / `name="quoted value"` parameters.
 *
 * @module
 */

/** One challenge: `Bearer realm="…",service="…",scope="…"` → scheme `bearer` and its params. */
export interface Challenge {
  /** Lower-cased scheme: `bearer`, `basic`, … */
  scheme: string;
  /** Parameters with lower-cased names. */
  params: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;

/** Parses every challenge in a `WWW-Authenticate` header value (several headers: join with `,`). */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let s = header;
  let current: Challenge | undefined;
  const skip = () => {
    s = s.replace(/^[\s,]+/, "");
  };
  skip();
  while (s.length > 0) {
    const m = TOKEN.exec(s);
    if (!m) {
      // Unparseable rest: skip one character and carry on (be lenient, as docker is).
      s = s.slice(1);
      skip();
      continue;
    }
    const name = m[0];
    const after = s.slice(name.length);
    const eq = /^\s*=\s*/.exec(after);
    if (eq && current) {
      // name=value parameter of the current challenge.
      s = after.slice(eq[0].length);
      let value: string;
      if (s.startsWith('"')) {
        let i = 1;
        value = "";
        while (i < s.length && s[i] !== '"') {
          if (s[i] === "\\" && i + 1 < s.length) i++;
          value += s[i++];
        }
        s = s.slice(i + 1);
      } else {
        const v = /^[^,\s]*/.exec(s)![0];
        value = v;
        s = s.slice(v.length);
      }
      current.params[name.toLowerCase()] = value;
      skip();
      continue;
    }
    // A new scheme (possibly followed by a token68, which we keep as `token68`).
    current = { scheme: name.toLowerCase(), params: {} };
    out.push(current);
    s = after.replace(/^\s+/, "");
    const t68 = /^[A-Za-z0-9\-._~+/]+=*(?=\s*(?:,|$))/.exec(s);
    if (t68 && !/^[A-Za-z0-9\-._~+/]+\s*=\s*[^=,\s]/.test(s)) {
      current.params.token68 = t68[0];
      s = s.slice(t68[0].length);
    }
    skip();
  }
  return out;
}
