// @ts-self-types="./webp_wasm.d.ts"
/**
 * libwebp's decoder compiled to WebAssembly (npm package @cwasm/webp, MIT; libwebp is BSD),
 * imported as a compiled module only (source phase import): nothing is instantiated and no file
 * permission is needed at import time. `image_webp.ts` instantiates it on first use.
 *
 * @module
 */
// deno-lint-ignore no-import-prefix -- mod.ts must import by URL without the project's import map
import source webpModule from "npm:@cwasm/webp@0.1.5/webp.wasm";

export default webpModule;
