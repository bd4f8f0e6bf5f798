/* The same all-reduce timings with Open MPI's MPI_Allreduce (the peer in allreduce.py).
 *   mpirun -np 2 allreduce_mpi */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  static const size_t sizes[] = {4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; ++k) {
    size_t bytes = sizes[k];
    int n = (int)(bytes / 4);
    float* buf = malloc(bytes);
    for (int i = 0; i < n; ++i) buf[i] = (float)(i % 7);
    int iters = bytes <= (256 << 10) ? 200 : bytes <= (4 << 20) ? 40 : 8;
    MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (int i = 0; i < iters; ++i) MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    double us = (MPI_Wtime() - t0) * 1e6 / iters;
    if (rank == 0) printf("%zu %.2f\n", bytes, us);
    fflush(stdout);
    free(buf);
  }
  MPI_Finalize();
  return 0;
}
