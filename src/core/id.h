/* Random identifiers (session ids, socket ids, message ids) from the OpenSSL CSPRNG. */
#ifndef HD_ID_H
#define HD_ID_H

#include <stddef.h>

/* Writes len random characters of the URL-safe base64 alphabet (6 bits each) and a NUL to out. */
void hd_id_random(char *out, size_t len);
/* The character of the id alphabet for v (0..63), and back (-1 for a character outside it). */
char hd_id_char(unsigned v);
int hd_id_value(char c);

#endif
