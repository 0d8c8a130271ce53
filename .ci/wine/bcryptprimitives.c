/* A stand-in for Windows' bcryptprimitives.dll, for wine 8 only (Debian 12), which lacks
 * it: Rust's standard library (1.78 and later) takes its random bytes from ProcessPrng
 * there. This one asks BCryptGenRandom, which wine has. Real Windows never loads it: it is
 * built next to the executable for the smoke tests under wine (.ci/run), not shipped. */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    return BCryptGenRandom(NULL, data, (ULONG)len, BCRYPT_USE_SYSTEM_PREFERRED_RNG) == 0;
}
