/*
 * The first program a kernel runs: prints a greeting and echoes its
 * arguments and environment, showing that execve laid out argc, argv and
 * envp on the initial stack as the System V x86_64 ABI says (argv and envp
 * NULL-terminated). fork_test execs it with an argument.
 */
#include "utest.h"

int main(int argc, char **argv, char **envp)
{
	int envc = 0;

	utest_start(argv[0]);
	utest_print("hello from user space\n");
	utest_print("argc=%d\n", argc);
	for (int i = 0; i < argc; i++)
		utest_print("argv[%d]=%s\n", i, argv[i]);
	for (; envp[envc]; envc++)
		utest_print("envp[%d]=%s\n", envc, envp[envc]);
	CHECK(argc >= 1 && argv[0] != NULL, "argv[0] is the program");
	CHECK(argv[argc] == NULL, "argv is NULL-terminated");
	CHECK(envp == argv + argc + 1, "envp follows argv's NULL on the stack");
	return utest_done();
}
