// Types of checkout-env.mjs (plain JavaScript, so that `node --import` can preload it without tsx).
/** The checkout this file is in. */
export declare const checkoutRoot: string;
/** The checkout's defaults for `env`, where it does not say otherwise (what checkout-env.mjs applies on import). */
export declare function applyCheckoutEnv<E extends Record<string, string | undefined>>(env?: E): E;
