/* The exec floor for case 6d: a C program that prints a handshake-shaped line at once and waits.
 * Its spawn → line time is what any plugin pays before its own code runs. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
    fputs("1|1|unix|/dev/null|grpc|\n", stdout);
    fflush(stdout);
    pause();
    return 0;
}
