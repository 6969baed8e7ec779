/**
 * Writes images as one tar that both readers accept: an OCI image layout (oci-layout, index.json,
 * blobs/sha256/…) plus docker's manifest.json pointing into the same blobs — what `docker save`
 * writes since docker 25. `docker load`, `podman load`, and skopeo's `docker-archive:` and
 * `oci-archive:` transports read it; config and layer digests are preserved because the stored blobs
 * are written byte for byte.
 *
 * @module
 */
import type { Digest } from "../digest.ts";
import type { Image } from "../image/image.ts";
import { MediaType } from "../oci/media_types.ts";
import type { Descriptor, Index } from "../oci/types.ts";
import { parseReference } from "../reference.ts";
import { TarWriter } from "../tar/writer.ts";

/** One image to write, with the canonical tags to record for it (may be empty). */
export interface ArchiveEntry {
  image: Image;
  tags: string[];
}

/** Options of {@linkcode writeImageArchive}. */
export interface WriteArchiveOptions {
  /** `docker-archive` (default) writes both layouts; `oci-archive` leaves out manifest.json. */
  format?: "docker-archive" | "oci-archive";
  /** Opens a blob's bytes. */
  openBlob: (digest: Digest) => AsyncIterable<Uint8Array>;
}

const encoder = new TextEncoder();

/** Streams the archive of `entries`. Blobs shared by several images are written once. */
export function writeImageArchive(
  entries: readonly ArchiveEntry[],
  options: WriteArchiveOptions,
): ReadableStream<Uint8Array> {
  const tar = new TarWriter();
  const format = options.format ?? "docker-archive";
  const produce = async () => {
    const file = async (name: string, bytes: Uint8Array) =>
      await tar.add({ name, type: "file", mode: 0o644, size: bytes.byteLength, mtime: 0 }, bytes);
    const dir = async (name: string) => await tar.add({ name, type: "dir", mode: 0o755, mtime: 0 });
    await file("oci-layout", encoder.encode(JSON.stringify({ imageLayoutVersion: "1.0.0" })));
    await dir("blobs/");
    await dir("blobs/sha256/");
    const written = new Set<Digest>();
    const blob = async (digest: Digest, size: number, bytes?: Uint8Array) => {
      if (written.has(digest)) return;
      written.add(digest);
      const name = `blobs/sha256/${digest.slice(7)}`;
      const header = { name, type: "file" as const, mode: 0o644, size, mtime: 0 };
      await tar.add(header, bytes ?? options.openBlob(digest));
    };
    const index: Index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
    const dockerManifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
    for (const { image, tags } of entries) {
      await blob(image.configDigest, image.configBytes.byteLength, image.configBytes);
      for (const layer of image.layers) await blob(layer.digest, layer.size);
      await blob(image.manifestDigest, image.manifestBytes.byteLength, image.manifestBytes);
      const descriptor: Descriptor = {
        mediaType: image.manifest.mediaType ?? MediaType.OciManifest,
        digest: image.manifestDigest,
        size: image.manifestBytes.byteLength,
      };
      if (tags.length === 0) index.manifests.push(descriptor);
      for (const tag of tags) {
        index.manifests.push({
          ...descriptor,
          annotations: {
            "io.containerd.image.name": tag,
            "org.opencontainers.image.ref.name": parseReference(tag).tag ?? "latest",
          },
        });
      }
      dockerManifest.push({
        Config: `blobs/sha256/${image.configDigest.slice(7)}`,
        // Fully qualified, as skopeo writes them: docker reads both, podman then keeps docker.io.
        RepoTags: tags,
        Layers: image.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`),
      });
    }
    await file("index.json", encoder.encode(JSON.stringify(index)));
    if (format === "docker-archive") {
      await file("manifest.json", encoder.encode(JSON.stringify(dockerManifest)));
    }
    await tar.close();
  };
  produce().catch((e) => tar.abort(e));
  return tar.readable;
}
