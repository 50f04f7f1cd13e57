// SPDX-License-Identifier: GPL-2.0
/*
 * linux_kbench: the in-kernel benchmarks of our kernel (#[kbench] functions
 * in tests/src/{page_alloc,slab,vmalloc,percpu,block}.rs, timed by
 * kernel/src/kbench.rs) run under Linux, so `cargo xtask bench --vs-linux`
 * can print each figure of ours beside Linux's.
 *
 * Same operations, same names, same iteration structure as kbench.rs:
 * warm up for WARMUP_NS, doubling the batch until one batch takes at least
 * a tenth of it; size rounds to about ROUND_NS from the last batch's rate;
 * run ROUNDS rounds and report the median, minimum and maximum per-round
 * cost per operation in picoseconds, one line per figure:
 *
 *	kbench: result <suite>::<name>[/<param>] <median_ps> <min_ps> <max_ps> <ops>
 *	kbench: done
 *
 * The lines are printed with pr_info; the benchmark init
 * (tests/user/init.c) raises the console log level around finit_module so
 * they reach the serial console under `quiet`. The module parameter
 * `filter` keeps only figures whose name contains it, or one of its
 * comma-separated parts, as kbench.rs does (init passes the kernel command
 * line's `kbench_filter=`).
 *
 * Timing uses ktime_get_ns() per batch and per round (never per
 * operation), as kbench.rs reads the TSC per batch. Each operation's loop
 * is its own function so the operation is inlined into it, as the
 * closures of kbench.rs are monomorphised into their loops.
 *
 * The block benchmarks submit the same bios as tests/src/block.rs to
 * /dev/vda (the bench machine's raw scratch disk; the init has loaded
 * virtio_blk and mounted devtmpfs) through submit_bio, below any page
 * cache, with Linux's defaults for the rest (its virtqueue depth, I/O
 * scheduler and merging). They use blkdev_get_by_path, which Linux 6.5
 * replaced; on later kernels they are left out with a note.
 *
 * Left out: alloc_free_order0_buddy (it needs zone_pcp_disable, which
 * Linux does not export to modules), alloc_free_all_memory_order0 (it
 * depends on the machine's free memory) and box_64_alloc_drop (kmalloc-64
 * under another name).
 */
#include <linux/bio.h>
#include <linux/blkdev.h>
#include <linux/completion.h>
#include <linux/gfp.h>
#include <linux/kernel.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/string.h>
#include <linux/version.h>
#include <linux/vmalloc.h>

#define WARMUP_NS 20000000ULL
#define ROUND_NS 20000000ULL
#define ROUNDS 11

static char *filter = "";
module_param(filter, charp, 0444);
MODULE_PARM_DESC(filter, "run only figures whose name contains this or one of its comma-separated parts");

/* Whether `filter` picks `name` (kbench.rs `picks`). */
static bool picked(const char *name)
{
	const char *part = filter;

	for (;;) {
		const char *comma = strchr(part, ',');
		size_t len = comma ? (size_t)(comma - part) : strlen(part);
		char one[96];

		if (len < sizeof(one)) {
			memcpy(one, part, len);
			one[len] = '\0';
			if (strstr(name, one))
				return true;
		}
		if (!comma)
			return false;
		part = comma + 1;
	}
}

/* Times n operations; arg is the swept parameter (order, size). */
typedef u64 (*time_ops_fn)(u64 n, unsigned long arg);

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/* kbench.rs Bencher::measure, then its result line. */
static void measure(const char *name, bool swept, unsigned long param, time_ops_fn time_ops)
{
	char full[96];
	u64 batch = 1, spent = 0, batch_ns = 0, per_op_ns, n;
	u64 rounds[ROUNDS];
	int r;

	if (swept)
		snprintf(full, sizeof(full), "%s/%lu", name, param);
	else
		strscpy(full, name, sizeof(full));
	if (!picked(full))
		return;
	while (spent < WARMUP_NS) {
		batch_ns = time_ops(batch, param);
		spent += batch_ns;
		if (batch_ns < WARMUP_NS / 10)
			batch *= 2;
		cond_resched();
	}
	per_op_ns = max_t(u64, batch_ns / batch, 1);
	n = max_t(u64, ROUND_NS / per_op_ns, 1);
	for (r = 0; r < ROUNDS; r++) {
		rounds[r] = time_ops(n, param) * 1000 / n;
		cond_resched();
	}
	sort(rounds, ROUNDS, sizeof(rounds[0]), cmp_u64, NULL);
	pr_info("kbench: result %s %llu %llu %llu %llu\n", full, rounds[ROUNDS / 2], rounds[0],
		rounds[ROUNDS - 1], n * ROUNDS);
}

#define DEFINE_TIME_OPS(fn, op)                                      \
	static noinline u64 fn(u64 n, unsigned long arg)             \
	{                                                            \
		u64 start = ktime_get_ns();                          \
		u64 i;                                               \
		for (i = 0; i < n; i++) {                            \
			op;                                          \
		}                                                    \
		return ktime_get_ns() - start;                       \
	}

/* page_alloc::alloc_free_order0_pcp, page_alloc::alloc_free_order/<order> */
DEFINE_TIME_OPS(alloc_free_order, {
	struct page *page = alloc_pages(GFP_KERNEL, arg);

	if (page)
		__free_pages(page, arg);
})

/* slab::kmalloc_kfree/<size> */
DEFINE_TIME_OPS(kmalloc_kfree, {
	void *p = kmalloc(arg, GFP_KERNEL);

	kfree(p);
})

/* slab::cache_192_alloc_free[_debug]: arg is the cache. */
DEFINE_TIME_OPS(cache_alloc_free, {
	struct kmem_cache *cache = (struct kmem_cache *)arg;
	void *p = kmem_cache_alloc(cache, GFP_KERNEL);

	if (p)
		kmem_cache_free(cache, p);
})

/* vmalloc::vmalloc_vfree/<size> */
DEFINE_TIME_OPS(vmalloc_vfree, {
	void *p = vmalloc(arg);

	vfree(p);
})

/* percpu::alloc_percpu_free_percpu */
DEFINE_TIME_OPS(alloc_percpu_free_percpu, {
	void __percpu *p = __alloc_percpu(64, 8);

	free_percpu(p);
})

/* percpu::this_cpu_add: arg is the per-CPU counter. */
DEFINE_TIME_OPS(this_cpu_add_u64, { this_cpu_add(*(u64 __percpu *)arg, 1); })

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 5, 0)
#define HAVE_BLOCK_BENCHES 1

/* tests/src/block.rs: BENCH_BIO_BYTES, BENCH_BIOS, BENCH_RANDOM_READS. */
#define BENCH_BIO_BYTES (128 * 1024)
#define BENCH_BIOS 64
#define BENCH_RANDOM_READS 64
#define BENCH_DISK "/dev/vda"
#define BENCH_DISK_MODE (FMODE_READ | FMODE_WRITE)

/* One block benchmark: its disk, buffers and where the next pass goes. */
struct blk_bench {
	struct block_device *bdev;
	blk_opf_t op;
	bool random;
	/* Bios per pass, bytes per bio, and one buffer per bio. */
	int nr;
	unsigned int bytes;
	struct page *pages[BENCH_BIOS];
	/* Sequential: 8 MiB passes in turn over the disk. */
	sector_t pass_sectors, passes;
	u64 pass;
	/* Random: 4 KiB blocks on the disk, and the xorshift64 state. */
	sector_t blocks;
	u64 state;
	atomic_t left;
	atomic_t errors;
	struct completion done;
};

static void blk_bench_end_io(struct bio *bio)
{
	struct blk_bench *b = bio->bi_private;

	if (bio->bi_status)
		atomic_inc(&b->errors);
	bio_put(bio);
	if (atomic_dec_and_test(&b->left))
		complete(&b->done);
}

/* The sector of bio `i` of the next pass (block.rs seq_bench,
 * vda_random_read_4k_x64). */
static sector_t blk_bench_sector(struct blk_bench *b, int i)
{
	if (!b->random)
		return (b->pass % b->passes) * b->pass_sectors + (sector_t)i * (BENCH_BIO_BYTES / 512);
	b->state ^= b->state << 13;
	b->state ^= b->state >> 7;
	b->state ^= b->state << 17;
	return (b->state % b->blocks) * 8;
}

/* block.rs bench_pass: every bio submitted before any is waited for. */
static void blk_bench_pass(struct blk_bench *b)
{
	int i;

	atomic_set(&b->left, b->nr);
	reinit_completion(&b->done);
	for (i = 0; i < b->nr; i++) {
		struct bio *bio = bio_alloc(b->bdev, 1, b->op, GFP_KERNEL);

		bio->bi_iter.bi_sector = blk_bench_sector(b, i);
		bio->bi_private = b;
		bio->bi_end_io = blk_bench_end_io;
		__bio_add_page(bio, b->pages[i], b->bytes, 0);
		submit_bio(bio);
	}
	b->pass++;
	wait_for_completion(&b->done);
}

/* block::vda_seq_read_8m_pass, block::vda_seq_write_8m_pass,
 * block::vda_random_read_4k_x64: arg is the blk_bench. */
DEFINE_TIME_OPS(blk_bench_passes, blk_bench_pass((struct blk_bench *)arg);)

static void bench_block(const char *name, blk_opf_t op, bool random)
{
	struct blk_bench *b;
	unsigned int order;
	int i;

	if (!picked(name))
		return;
	b = kzalloc(sizeof(*b), GFP_KERNEL);
	if (!b) {
		pr_err("kbench: FAILED %s: kzalloc\n", name);
		return;
	}
	b->bdev = blkdev_get_by_path(BENCH_DISK, BENCH_DISK_MODE, NULL);
	if (IS_ERR(b->bdev)) {
		pr_err("kbench: FAILED %s: opening %s: %ld\n", name, BENCH_DISK, PTR_ERR(b->bdev));
		kfree(b);
		return;
	}
	b->op = op;
	b->random = random;
	b->nr = random ? BENCH_RANDOM_READS : BENCH_BIOS;
	b->bytes = random ? PAGE_SIZE : BENCH_BIO_BYTES;
	order = get_order(b->bytes);
	b->pass_sectors = BENCH_BIOS * (BENCH_BIO_BYTES / 512);
	b->passes = max_t(sector_t, bdev_nr_sectors(b->bdev) / b->pass_sectors, 1);
	b->blocks = bdev_nr_sectors(b->bdev) / 8;
	b->state = 0x9e3779b97f4a7c15ULL;
	init_completion(&b->done);
	for (i = 0; i < b->nr; i++) {
		b->pages[i] = alloc_pages(GFP_KERNEL, order);
		if (!b->pages[i]) {
			pr_err("kbench: FAILED %s: alloc_pages\n", name);
			goto out;
		}
	}
	measure(name, false, (unsigned long)b, blk_bench_passes);
	if (atomic_read(&b->errors))
		pr_err("kbench: FAILED %s: %d I/O errors\n", name, atomic_read(&b->errors));
out:
	for (i = 0; i < b->nr && b->pages[i]; i++)
		__free_pages(b->pages[i], order);
	blkdev_put(b->bdev, BENCH_DISK_MODE);
	kfree(b);
}
#endif

static void bench_cache(const char *bench, const char *cache_name, slab_flags_t flags)
{
	struct kmem_cache *cache = kmem_cache_create(cache_name, 192, 8, flags, NULL);

	if (!cache) {
		pr_err("kbench: FAILED %s: kmem_cache_create\n", bench);
		return;
	}
	measure(bench, false, (unsigned long)cache, cache_alloc_free);
	kmem_cache_destroy(cache);
}

static int __init linux_kbench_init(void)
{
	static const unsigned long kmalloc_sizes[] = { 8, 64, 512, 4096 };
	static const unsigned long vmalloc_sizes[] = { PAGE_SIZE, 1 << 20 };
	u64 __percpu *counter;
	unsigned long order;
	int i;

	measure("page_alloc::alloc_free_order0_pcp", false, 0, alloc_free_order);
	for (order = 0; order < MAX_ORDER; order++)
		measure("page_alloc::alloc_free_order", true, order, alloc_free_order);
	for (i = 0; i < ARRAY_SIZE(kmalloc_sizes); i++)
		measure("slab::kmalloc_kfree", true, kmalloc_sizes[i], kmalloc_kfree);
	bench_cache("slab::cache_192_alloc_free", "bench_192", 0);
	/* slub_debug=FZPU on the cache, as ours SlabFlags::DEBUG. */
	bench_cache("slab::cache_192_alloc_free_debug", "bench_192_debug",
		    SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER);
	for (i = 0; i < ARRAY_SIZE(vmalloc_sizes); i++)
		measure("vmalloc::vmalloc_vfree", true, vmalloc_sizes[i], vmalloc_vfree);
	measure("percpu::alloc_percpu_free_percpu", false, 0, alloc_percpu_free_percpu);
	counter = alloc_percpu(u64);
	if (counter) {
		measure("percpu::this_cpu_add", false, (unsigned long)counter, this_cpu_add_u64);
		free_percpu(counter);
	}
#ifdef HAVE_BLOCK_BENCHES
	bench_block("block::vda_seq_read_8m_pass", REQ_OP_READ, false);
	bench_block("block::vda_seq_write_8m_pass", REQ_OP_WRITE, false);
	bench_block("block::vda_random_read_4k_x64", REQ_OP_READ, true);
#else
	pr_info("linux_kbench: block benchmarks left out: blkdev_get_by_path is gone since Linux 6.5\n");
#endif
	pr_info("kbench: done\n");
	/* Stay loaded: an error here would make a retrying insmod run it twice. */
	return 0;
}

static void __exit linux_kbench_exit(void)
{
}

module_init(linux_kbench_init);
module_exit(linux_kbench_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Our kernel's kbench benchmarks, timed under Linux");
