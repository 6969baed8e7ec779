/**
 * `berth images [OPTIONS] [REPOSITORY[:TAG]]`: docker's columns REPOSITORY, TAG, IMAGE ID, CREATED,
 * SIZE; `-q`, `--digests`, `--no-trunc`, `--filter dangling=…|reference=…`, `--format`.
 *
 * @module
 */
import { UsageError } from "./_args.ts";
import type { Command } from "./_command.ts";
import { humanSize, since } from "./_human.ts";
import { table } from "./_table.ts";
import { parseTemplate } from "./_template.ts";
import type { ImageSummary } from "../store/store.ts";
import { formatReference, parseReference } from "../reference.ts";

interface Row {
  ID: string;
  Repository: string;
  Tag: string;
  Digest: string;
  CreatedSince: string;
  CreatedAt: string;
  Size: string;
  Containers: string;
}

const HEADERS: Record<string, string> = {
  ID: "IMAGE ID",
  Repository: "REPOSITORY",
  Tag: "TAG",
  Digest: "DIGEST",
  CreatedSince: "CREATED",
  CreatedAt: "CREATED AT",
  Size: "SIZE",
  Containers: "CONTAINERS",
};

function splitTag(familiar: string): [string, string] {
  const at = familiar.lastIndexOf(":");
  return at > familiar.lastIndexOf("/")
    ? [familiar.slice(0, at), familiar.slice(at + 1)]
    : [familiar, ""];
}

/** Glob match as docker's `reference=` filter (path.Match: `*` within a path component). */
function globMatch(pattern: string, text: string): boolean {
  const re = new RegExp(
    "^" +
      pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replaceAll("*", "[^/]*").replaceAll(
        "?",
        "[^/]",
      ) + "$",
  );
  return re.test(text);
}

function rows(images: ImageSummary[], noTrunc: boolean): Row[] {
  const out: Row[] = [];
  for (const img of images) {
    const base = {
      ID: noTrunc ? img.id : img.id.slice(7, 19),
      CreatedSince: since(img.created),
      CreatedAt: img.created ?? "",
      Size: humanSize(img.size),
      Containers: "N/A",
    };
    const digestFor = (repo: string) =>
      img.repoDigests.find((d) => d.startsWith(`${repo}@`))?.split("@")[1] ?? "<none>";
    if (img.repoTags.length === 0) {
      const repo = img.repoDigests[0]?.split("@")[0] ?? "<none>";
      out.push({ ...base, Repository: repo, Tag: "<none>", Digest: digestFor(repo) });
    }
    for (const t of img.repoTags) {
      const [repo, tag] = splitTag(t);
      out.push({ ...base, Repository: repo, Tag: tag, Digest: digestFor(repo) });
    }
  }
  return out;
}

/** The `images` command. */
export const command: Command = {
  usage: "[OPTIONS] [REPOSITORY[:TAG]]",
  summary: "List images",
  flags: {
    all: {
      type: "boolean",
      short: "a",
      help: "Show all images (berth keeps no intermediate images)",
    },
    quiet: { type: "boolean", short: "q", help: "Only show image IDs" },
    digests: { type: "boolean", help: "Show digests" },
    "no-trunc": { type: "boolean", help: "Don't truncate output" },
    filter: {
      type: "list",
      short: "f",
      arg: "FILTER",
      help: "Filter output: dangling=true|false, reference=PATTERN",
    },
    format: { type: "string", arg: "FORMAT", help: "'table', 'json', or a Go template" },
  },
  async run({ flags, args }, ctx) {
    if (args.length > 1) throw new UsageError(`"berth images" accepts at most 1 argument`);
    let images = await (await ctx.store()).images();
    const filters = (flags.filter as string[] | undefined) ?? [];
    if (args[0]) filters.push(`reference=${args[0]}`);
    for (const f of filters) {
      const [key, value = ""] = f.split(/=(.*)/s);
      if (key === "dangling") {
        if (value !== "true" && value !== "false") {
          throw new UsageError(`invalid filter 'dangling=${value}': use true or false`);
        }
        images = images.filter((i) => (i.repoTags.length === 0) === (value === "true"));
      } else if (key === "reference") {
        const pattern = value.includes(":") && value.lastIndexOf(":") > value.lastIndexOf("/")
          ? value
          : `${value}:*`;
        // A tag matches in the form docker shows it or in its full form (docker.io/library/…).
        const matches = (t: string) =>
          globMatch(pattern, t) || globMatch(pattern, formatReference(parseReference(t)));
        images = images.filter((i) => i.repoTags.some(matches))
          .map((i) => ({ ...i, repoTags: i.repoTags.filter(matches) }));
      } else throw new UsageError(`invalid filter '${f}'`);
    }
    const noTrunc = flags["no-trunc"] === true;
    if (flags.quiet) {
      const ids = [...new Set(images.map((i) => (noTrunc ? i.id : i.id.slice(7, 19))))];
      ctx.out(ids.map((id) => `${id}\n`).join(""));
      return 0;
    }
    const list = rows(images, noTrunc);
    const format = flags.format as string | undefined;
    if (format === "json") {
      ctx.out(list.map((r) => JSON.stringify(r) + "\n").join(""));
      return 0;
    }
    if (format !== undefined && format !== "table") {
      const tpl = parseTemplate(format);
      if (tpl.table) {
        const lines = [tpl.header(HEADERS), ...list.map((r) => tpl.render(r))];
        ctx.out(table(lines.map((l) => l.split("\t"))) + "\n");
      } else ctx.out(list.map((r) => tpl.render(r) + "\n").join(""));
      return 0;
    }
    const cols: (keyof Row)[] = flags.digests
      ? ["Repository", "Tag", "Digest", "ID", "CreatedSince", "Size"]
      : ["Repository", "Tag", "ID", "CreatedSince", "Size"];
    ctx.out(table([cols.map((c) => HEADERS[c]), ...list.map((r) => cols.map((c) => r[c]))]) + "\n");
    return 0;
  },
};
