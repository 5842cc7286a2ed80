/* classify_digit.c: the digits CNN, built ahead of time (examples/aot_digits.py), from C.
 *
 *   cc -O2 classify_digit.c digits.o -lm -o classify_digit
 *   ./classify_digit digit.bin          (64 float32 pixels in [0, 1], row by row)
 *
 * prints the digit the network sees and its probability. No Python, no tracejit: the
 * library needs the C library and libm only. */
#include <stdio.h>

#include "digits.h"

int main(int argc, char **argv) {
    float image[DIGITS_ARG0_ELEMENTS], probabilities[DIGITS_RESULT0_ELEMENTS];
    FILE *f;
    int digit = 0, i;

    if (argc != 2) {
        fprintf(stderr, "usage: %s IMAGE.bin (%d float32 pixels)\n", argv[0],
                DIGITS_ARG0_ELEMENTS);
        return 2;
    }
    f = fopen(argv[1], "rb");
    if (!f || fread(image, sizeof image, 1, f) != 1) {
        fprintf(stderr, "cannot read %zu bytes from %s\n", sizeof image, argv[1]);
        return 1;
    }
    fclose(f);
    if (digits_run(image, probabilities) != DIGITS_OK) {
        fprintf(stderr, "digits_run failed\n");
        return 1;
    }
    for (i = 1; i < DIGITS_RESULT0_ELEMENTS; i++)
        if (probabilities[i] > probabilities[digit])
            digit = i;
    printf("digit: %d (probability %.3f)\n", digit, probabilities[digit]);
    return 0;
}
