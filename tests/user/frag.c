/*
 * Fragments memory for compaction to repair, and checks that compaction
 * moved its pages without losing a byte: maps MIB MiB (default 32) of
 * anonymous memory, writes every page with a pattern of its own, frees
 * every other page with madvise(MADV_DONTNEED), sleeps SECONDS (default
 * 0), then verifies that every kept page still holds its pattern and every
 * freed page reads back as zeros. Exit status 0 only if all did.
 *
 * Under our kernel the console runs it in the background
 * (`run frag 32 20 &`) and `compact` moves its pages meanwhile; the
 * console suite does the same from a ktest.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

/* The word at `word` of page `page`: different for every word of every
 * page, and never zero. */
static uint64_t pattern(size_t page, size_t word)
{
	return ((uint64_t)page * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)word << 48) ^ 0x5a5a5a5a5a5a5a5aULL;
}

int main(int argc, char **argv)
{
	long mib = argc > 1 ? atol(argv[1]) : 32;
	long seconds = argc > 2 ? atol(argv[2]) : 0;
	size_t len = (size_t)mib << 20, pages = len / PAGE, words = PAGE / sizeof(uint64_t);
	struct timespec ts = { .tv_sec = seconds, .tv_nsec = 0 };
	size_t bad_kept = 0, bad_holes = 0;

	if (mib <= 0 || seconds < 0) {
		fprintf(stderr, "usage: frag [MIB [SECONDS]]\n");
		return 2;
	}
	uint64_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("frag: mmap");
		return 1;
	}
	for (size_t i = 0; i < pages; i++)
		for (size_t w = 0; w < words; w++)
			p[i * words + w] = pattern(i, w);
	for (size_t i = 1; i < pages; i += 2) {
		if (madvise((char *)p + i * PAGE, PAGE, MADV_DONTNEED) != 0) {
			perror("frag: madvise");
			return 1;
		}
	}
	printf("frag: %zu pages kept, %zu freed; sleeping %ld s\n", (pages + 1) / 2, pages / 2, seconds);
	fflush(stdout);
	while (nanosleep(&ts, &ts) != 0)
		;
	for (size_t i = 0; i < pages; i++) {
		for (size_t w = 0; w < words; w++) {
			uint64_t want = i % 2 ? 0 : pattern(i, w);
			if (p[i * words + w] != want) {
				if (i % 2)
					bad_holes++;
				else
					bad_kept++;
				break;
			}
		}
	}
	if (bad_kept || bad_holes) {
		printf("FAIL frag: %zu kept pages changed, %zu freed pages not zero\n", bad_kept, bad_holes);
		return 1;
	}
	printf("PASS frag: %zu kept pages intact\n", (pages + 1) / 2);
	return 0;
}
