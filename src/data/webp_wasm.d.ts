/** libwebp's decoder as a compiled WebAssembly module (exports memory, malloc, free,
 * WebPDecodeRGBA; imports three WASI stubs). */
declare const webpModule: WebAssembly.Module;
export default webpModule;
