// A prebuilt core's flavour and the npm package that carries it: the one rule, read by the loader
// (lib/core-select.ts) and by the release that makes the packages (dev/release.mjs, through tsx).
//
// A flavour names the PyTorch a core was compiled against, torch<major.minor>, with -cu<CUDA major> for a build with
// the CUDA kernels: libtorch has no stable C++ ABI across minor releases, so that is what a core fits. Its package
// is @dpsm-native/<platform>-<arch>-<flavour>, and inside it the core sits where prebuildify puts a prebuilt binary
// and node-gyp-build looks for one: prebuilds/<platform>-<arch>/dpsm-native.<libc>.node (N-API, so no Node ABI tag).

/** The npm scope of the flavour packages. */
export const FLAVOUR_SCOPE = "@dpsm-native";

/** prebuildify's --name for the cores (the first part of the file name, which node-gyp-build ignores). */
export const PREBUILD_NAME = "dpsm-native";

const FLAVOUR = /^torch(\d+\.\d+)(?:-cu(\d+))?$/;

/** A torch version's major.minor ("2.15.0" → "2.15"), what a core has to match. */
export function torchMinor(torchVersion: string): string {
  return torchVersion.split(".").slice(0, 2).join(".");
}

/** The flavour of a core built against `torchVersion` ("2.15.0", "1.13.1+cpu"), with `cudaMajor` for CUDA. */
export function flavourName(torchVersion: string, cudaMajor?: string | null): string {
  const mm = torchMinor(torchVersion);
  return cudaMajor ? `torch${mm}-cu${cudaMajor}` : `torch${mm}`;
}

/** What a flavour name says (undefined for a name that is not one): its torch major.minor and CUDA major. */
export function parseFlavour(flavour: string): { torch: string; cuda: string | null } | undefined {
  const m = FLAVOUR.exec(flavour);
  return m ? { torch: m[1]!, cuda: m[2] ?? null } : undefined;
}

/** The npm package that carries a flavour's core for a platform (this process's by default). */
export function flavourPackage(flavour: string, platform = process.platform, arch = process.arch): string {
  return `${FLAVOUR_SCOPE}/${platform}-${arch}-${flavour}`;
}

/** The flavour a package name carries for a platform (this process's by default); undefined for other names. */
export function packageFlavour(name: string, platform = process.platform, arch = process.arch): string | undefined {
  const prefix = `${FLAVOUR_SCOPE}/${platform}-${arch}-`;
  if (!name.startsWith(prefix)) return undefined;
  const flavour = name.slice(prefix.length);
  return parseFlavour(flavour) ? flavour : undefined;
}
