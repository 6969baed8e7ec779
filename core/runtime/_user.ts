/**
 * Resolution of docker's `--user name|uid[:group|gid]` against a rootfs's /etc/passwd and
 * /etc/group, with runc's rules (libcontainer/user.GetExecUser): a user matched by name or uid
 * brings its primary group, home and (only when no group is given) its supplementary groups; a
 * numeric uid or gid without an entry is used as is.
 *
 * @module
 */
import { NotFoundError } from "../errors.ts";

/** The resolved user. */
export interface ResolvedUser {
  /** User id. */
  uid: number;
  /** Primary group id. */
  gid: number;
  /** Supplementary group ids (from /etc/group membership). */
  additionalGids: number[];
  /** Home directory (`/` without a passwd entry). */
  home: string;
}

// an id of a file is kept as written: it is checked when its entry is used
interface PasswdEntry {
  name: string;
  uid: string;
  gid: string;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: string;
  members: string[];
}

const ID_MAX = 2 ** 31 - 1;

/** A uid or gid: decimal digits, 0..2^31-1 (runc's rule); undefined when not digits. */
function parseId(s: string): number | undefined {
  if (!/^[0-9]+$/.test(s)) return undefined;
  const n = Number(s);
  if (n > ID_MAX) throw new RangeError(`Id out of range: ${s}`);
  return n;
}

/** The id of a passwd or group entry; RangeError for anything but decimal 0..2^31-1. */
function entryId(s: string, what: string): number {
  const n = parseId(s);
  if (n === undefined) throw new RangeError(`Invalid ${what}: ${JSON.stringify(s)}`);
  return n;
}

/** Whether the id field `s` of an entry is the number `n` (`"007"` is 7; `"-1"` is nothing). */
function idIs(s: string, n: number | undefined): boolean {
  return n !== undefined && /^[0-9]+$/.test(s) && Number(s) === n;
}

function lines(text: string | undefined): string[][] {
  return (text ?? "").split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split(":"));
}

function passwd(text: string | undefined): PasswdEntry[] {
  return lines(text).filter((f) => f.length >= 4).map((f) => ({
    name: f[0],
    uid: f[2],
    gid: f[3],
    home: f[5] || "/",
  }));
}

function groups(text: string | undefined): GroupEntry[] {
  return lines(text).filter((f) => f.length >= 3).map((f) => ({
    name: f[0],
    gid: f[2],
    members: (f[3] ?? "").split(",").filter(Boolean),
  }));
}

/**
 * Resolves `spec` (`""` = root) against the text of /etc/passwd and /etc/group (undefined when
 * the rootfs has none). NotFoundError for a name without an entry; RangeError for an id (given,
 * or in an entry used) that is not a decimal 0..2^31-1: `-1` would leave the id unchanged.
 */
export function resolveUser(
  spec: string,
  files: { passwd?: string; group?: string },
): ResolvedUser {
  const colon = spec.indexOf(":");
  const userArg = colon < 0 ? spec : spec.slice(0, colon);
  const groupArg = colon < 0 ? "" : spec.slice(colon + 1);
  const uidArg = userArg === "" ? 0 : parseId(userArg);
  const gidArg = parseId(groupArg);

  const user: ResolvedUser = { uid: 0, gid: 0, additionalGids: [], home: "/" };
  const entry = passwd(files.passwd).find((u) =>
    userArg === "" ? idIs(u.uid, 0) : u.name === userArg || idIs(u.uid, uidArg)
  );
  if (entry) {
    user.uid = entryId(entry.uid, `uid of user ${entry.name}`);
    user.gid = entryId(entry.gid, `gid of user ${entry.name}`);
    user.home = entry.home;
  } else if (uidArg !== undefined) {
    user.uid = uidArg;
  } else {
    throw new NotFoundError(`unable to find user ${userArg}: no matching entries in passwd file`);
  }

  if (groupArg !== "" || entry) {
    const matched = groups(files.group).filter((g) =>
      groupArg === "" ? g.members.includes(entry!.name) : g.name === groupArg || idIs(g.gid, gidArg)
    );
    const gid = (g: GroupEntry) => entryId(g.gid, `gid of group ${g.name}`);
    if (groupArg !== "") {
      if (matched.length) user.gid = gid(matched[0]);
      else if (gidArg !== undefined) user.gid = gidArg;
      else {
        throw new NotFoundError(
          `unable to find group ${groupArg}: no matching entries in group file`,
        );
      }
    } else {
      user.additionalGids = matched.map(gid);
    }
  }
  return user;
}
