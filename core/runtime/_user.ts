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

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const ID_MAX = 2 ** 31 - 1;

function parseId(s: string): number | undefined {
  if (!/^[0-9]+$/.test(s)) return undefined;
  const n = Number(s);
  if (n > ID_MAX) throw new RangeError(`Id out of range: ${s}`);
  return n;
}

function lines(text: string | undefined): string[][] {
  return (text ?? "").split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split(":"));
}

function passwd(text: string | undefined): PasswdEntry[] {
  return lines(text).filter((f) => f.length >= 4).flatMap((f) => {
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    return Number.isInteger(uid) && Number.isInteger(gid)
      ? [{ name: f[0], uid, gid, home: f[5] || "/" }]
      : [];
  });
}

function groups(text: string | undefined): GroupEntry[] {
  return lines(text).filter((f) => f.length >= 3).flatMap((f) => {
    const gid = Number(f[2]);
    return Number.isInteger(gid)
      ? [{ name: f[0], gid, members: (f[3] ?? "").split(",").filter(Boolean) }]
      : [];
  });
}

/**
 * Resolves `spec` (`""` = root) against the text of /etc/passwd and /etc/group (undefined when
 * the rootfs has none). NotFoundError for a name without an entry.
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
    userArg === "" ? u.uid === 0 : u.name === userArg || u.uid === uidArg
  );
  if (entry) {
    user.uid = entry.uid;
    user.gid = entry.gid;
    user.home = entry.home;
  } else if (uidArg !== undefined) {
    user.uid = uidArg;
  } else {
    throw new NotFoundError(`unable to find user ${userArg}: no matching entries in passwd file`);
  }

  if (groupArg !== "" || entry) {
    const matched = groups(files.group).filter((g) =>
      groupArg === ""
        ? g.members.includes(entry!.name)
        : g.name === groupArg || (gidArg !== undefined && g.gid === gidArg)
    );
    if (groupArg !== "") {
      if (matched.length) user.gid = matched[0].gid;
      else if (gidArg !== undefined) user.gid = gidArg;
      else {
        throw new NotFoundError(
          `unable to find group ${groupArg}: no matching entries in group file`,
        );
      }
    } else {
      user.additionalGids = matched.map((g) => g.gid);
    }
  }
  return user;
}
