! fusor.f90 — Fortran bindings for fusor's C API (ISO_C_BINDING).
!
! Every routine is the C function of the same name (see fusor.h and docs/c-api.md);
! handles are type(c_ptr), statuses integer(c_int) with FUSOR_OK = 0, and strings are
! passed NUL-terminated: use fusor_cstr("text") to make one.  Fortran arrays are
! column-major: wrap them with fusor_array_wrap_fortran, which passes Fortran strides.
module fusor
    use, intrinsic :: iso_c_binding
    implicit none
    private :: c_strlen

    integer(c_int), parameter :: FUSOR_OK = 0
    integer(c_int), parameter :: FUSOR_BOOL = 0, FUSOR_I8 = 1, FUSOR_I16 = 2, FUSOR_I32 = 3, &
                                 FUSOR_I64 = 4, FUSOR_U8 = 5, FUSOR_U16 = 6, FUSOR_U32 = 7, &
                                 FUSOR_U64 = 8, FUSOR_F32 = 9, FUSOR_F64 = 10, &
                                 FUSOR_F16 = 11
    integer(c_int), parameter :: FUSOR_MEMORY_HOST = 0, FUSOR_MEMORY_PINNED = 1, &
                                 FUSOR_MEMORY_DEVICE = 2, FUSOR_MEMORY_MANAGED = 3

    interface
        function fusor_context_create(options, ctx) bind(C, name="fusor_context_create")
            import :: c_ptr, c_int
            type(c_ptr), value :: options
            type(c_ptr), intent(out) :: ctx
            integer(c_int) :: fusor_context_create
        end function

        subroutine fusor_context_destroy(ctx) bind(C, name="fusor_context_destroy")
            import :: c_ptr
            type(c_ptr), value :: ctx
        end subroutine

        function fusor_kernel_compile(ctx, source, filename, name, kernel) &
                bind(C, name="fusor_kernel_compile")
            import :: c_ptr, c_int, c_char
            type(c_ptr), value :: ctx
            character(kind=c_char), dimension(*) :: source, filename
            type(c_ptr), value :: name
            type(c_ptr), intent(out) :: kernel
            integer(c_int) :: fusor_kernel_compile
        end function

        subroutine fusor_kernel_destroy(kernel) bind(C, name="fusor_kernel_destroy")
            import :: c_ptr
            type(c_ptr), value :: kernel
        end subroutine

        function fusor_array_wrap(ctx, data, dtype, ndim, shape, strides, array) &
                bind(C, name="fusor_array_wrap")
            import :: c_ptr, c_int, c_int64_t
            type(c_ptr), value :: ctx, data
            integer(c_int), value :: dtype, ndim
            integer(c_int64_t), dimension(*), intent(in) :: shape, strides
            type(c_ptr), intent(out) :: array
            integer(c_int) :: fusor_array_wrap
        end function

        subroutine fusor_array_destroy(array) bind(C, name="fusor_array_destroy")
            import :: c_ptr
            type(c_ptr), value :: array
        end subroutine

        function fusor_args_create(kernel, args) bind(C, name="fusor_args_create")
            import :: c_ptr, c_int
            type(c_ptr), value :: kernel
            type(c_ptr), intent(out) :: args
            integer(c_int) :: fusor_args_create
        end function

        subroutine fusor_args_destroy(args) bind(C, name="fusor_args_destroy")
            import :: c_ptr
            type(c_ptr), value :: args
        end subroutine

        function fusor_args_set_array(args, name, array) bind(C, name="fusor_args_set_array")
            import :: c_ptr, c_int, c_char
            type(c_ptr), value :: args
            character(kind=c_char), dimension(*) :: name
            type(c_ptr), value :: array
            integer(c_int) :: fusor_args_set_array
        end function

        function fusor_args_set_f64(args, name, v) bind(C, name="fusor_args_set_f64")
            import :: c_ptr, c_int, c_char, c_double
            type(c_ptr), value :: args
            character(kind=c_char), dimension(*) :: name
            real(c_double), value :: v
            integer(c_int) :: fusor_args_set_f64
        end function

        function fusor_args_set_i64(args, name, v) bind(C, name="fusor_args_set_i64")
            import :: c_ptr, c_int, c_char, c_int64_t
            type(c_ptr), value :: args
            character(kind=c_char), dimension(*) :: name
            integer(c_int64_t), value :: v
            integer(c_int) :: fusor_args_set_i64
        end function

        function fusor_args_get_f64(args, name, v) bind(C, name="fusor_args_get_f64")
            import :: c_ptr, c_int, c_char, c_double
            type(c_ptr), value :: args
            character(kind=c_char), dimension(*) :: name
            real(c_double), intent(out) :: v
            integer(c_int) :: fusor_args_get_f64
        end function

        function fusor_launch(kernel, args) bind(C, name="fusor_launch")
            import :: c_ptr, c_int
            type(c_ptr), value :: kernel, args
            integer(c_int) :: fusor_launch
        end function

        function fusor_set_num_threads(n) bind(C, name="fusor_set_num_threads")
            import :: c_int
            integer(c_int), value :: n
            integer(c_int) :: fusor_set_num_threads
        end function

        ! Prepared launches (time loops): check once, launch many times, swap buffers.
        function fusor_prepare(kernel, args, prepared) bind(C, name="fusor_prepare")
            import :: c_ptr, c_int
            type(c_ptr), value :: kernel, args
            type(c_ptr), intent(out) :: prepared
            integer(c_int) :: fusor_prepare
        end function

        subroutine fusor_prepared_destroy(prepared) bind(C, name="fusor_prepared_destroy")
            import :: c_ptr
            type(c_ptr), value :: prepared
        end subroutine

        function fusor_prepared_launch(prepared) bind(C, name="fusor_prepared_launch")
            import :: c_ptr, c_int
            type(c_ptr), value :: prepared
            integer(c_int) :: fusor_prepared_launch
        end function

        function fusor_prepared_launch_async(prepared, stream) &
                bind(C, name="fusor_prepared_launch_async")
            import :: c_ptr, c_int
            type(c_ptr), value :: prepared, stream
            integer(c_int) :: fusor_prepared_launch_async
        end function

        function fusor_prepared_swap(prepared, x, y) bind(C, name="fusor_prepared_swap")
            import :: c_ptr, c_int, c_char
            type(c_ptr), value :: prepared
            character(kind=c_char), dimension(*) :: x, y
            integer(c_int) :: fusor_prepared_swap
        end function

        function fusor_prepared_set_f64(prepared, name, v) bind(C, name="fusor_prepared_set_f64")
            import :: c_ptr, c_int, c_char, c_double
            type(c_ptr), value :: prepared
            character(kind=c_char), dimension(*) :: name
            real(c_double), value :: v
            integer(c_int) :: fusor_prepared_set_f64
        end function

        ! Sequences: several prepared launches as one step.
        function fusor_sequence_create(ctx, seq) bind(C, name="fusor_sequence_create")
            import :: c_ptr, c_int
            type(c_ptr), value :: ctx
            type(c_ptr), intent(out) :: seq
            integer(c_int) :: fusor_sequence_create
        end function

        subroutine fusor_sequence_destroy(seq) bind(C, name="fusor_sequence_destroy")
            import :: c_ptr
            type(c_ptr), value :: seq
        end subroutine

        function fusor_sequence_add(seq, prepared) bind(C, name="fusor_sequence_add")
            import :: c_ptr, c_int
            type(c_ptr), value :: seq, prepared
            integer(c_int) :: fusor_sequence_add
        end function

        function fusor_sequence_launch(seq) bind(C, name="fusor_sequence_launch")
            import :: c_ptr, c_int
            type(c_ptr), value :: seq
            integer(c_int) :: fusor_sequence_launch
        end function

        function fusor_sequence_launch_async(seq, stream) bind(C, name="fusor_sequence_launch_async")
            import :: c_ptr, c_int
            type(c_ptr), value :: seq, stream
            integer(c_int) :: fusor_sequence_launch_async
        end function

        ! Streams: queued launches that overlap with the caller.
        function fusor_stream_create(ctx, stream) bind(C, name="fusor_stream_create")
            import :: c_ptr, c_int
            type(c_ptr), value :: ctx
            type(c_ptr), intent(out) :: stream
            integer(c_int) :: fusor_stream_create
        end function

        subroutine fusor_stream_destroy(stream) bind(C, name="fusor_stream_destroy")
            import :: c_ptr
            type(c_ptr), value :: stream
        end subroutine

        function fusor_stream_synchronize(stream) bind(C, name="fusor_stream_synchronize")
            import :: c_ptr, c_int
            type(c_ptr), value :: stream
            integer(c_int) :: fusor_stream_synchronize
        end function

        function fusor_launch_async(kernel, args, stream) bind(C, name="fusor_launch_async")
            import :: c_ptr, c_int
            type(c_ptr), value :: kernel, args, stream
            integer(c_int) :: fusor_launch_async
        end function

        ! GPUs and where arrays live.
        function fusor_gpu_status() bind(C, name="fusor_gpu_status")
            import :: c_int
            integer(c_int) :: fusor_gpu_status
        end function

        function fusor_gpu_count() bind(C, name="fusor_gpu_count")
            import :: c_int
            integer(c_int) :: fusor_gpu_count
        end function

        function fusor_array_create_on(ctx, memory, device, dtype, ndim, shape, array) &
                bind(C, name="fusor_array_create_on")
            import :: c_ptr, c_int, c_int64_t
            type(c_ptr), value :: ctx
            integer(c_int), value :: memory, device, dtype, ndim
            integer(c_int64_t), dimension(*), intent(in) :: shape
            type(c_ptr), intent(out) :: array
            integer(c_int) :: fusor_array_create_on
        end function

        function fusor_array_copy(dst, src, stream) bind(C, name="fusor_array_copy")
            import :: c_ptr, c_int
            type(c_ptr), value :: dst, src, stream
            integer(c_int) :: fusor_array_copy
        end function

        function fusor_last_error_c() bind(C, name="fusor_last_error")
            import :: c_ptr
            type(c_ptr) :: fusor_last_error_c
        end function

        function c_strlen(s) bind(C, name="strlen")
            import :: c_ptr, c_size_t
            type(c_ptr), value :: s
            integer(c_size_t) :: c_strlen
        end function
    end interface

contains

    ! A NUL-terminated copy of a Fortran string, for the C API's string arguments.
    function fusor_cstr(s) result(c)
        character(len=*), intent(in) :: s
        character(kind=c_char, len=len_trim(s) + 1) :: c
        c = trim(s) // c_null_char
    end function

    ! This thread's last error message as a Fortran string.
    function fusor_last_error() result(msg)
        character(len=:), allocatable :: msg
        type(c_ptr) :: p
        character(kind=c_char), pointer :: chars(:)
        integer :: i, n
        p = fusor_last_error_c()
        n = int(c_strlen(p))
        call c_f_pointer(p, chars, [n])
        allocate(character(len=n) :: msg)
        do i = 1, n
            msg(i:i) = chars(i)
        end do
    end function

    ! Wraps a contiguous Fortran array of rank `ndim` with extents `extents` (Fortran
    ! order) as a fusor array of the same logical shape: fusor sees shape (n1, n2, ...)
    ! with column-major byte strides, so element (i, j) is the same element on both sides.
    function fusor_array_wrap_fortran(ctx, data, dtype, itemsize, ndim, extents, array) &
            result(status)
        type(c_ptr), intent(in) :: ctx, data
        integer(c_int), intent(in) :: dtype, ndim
        integer, intent(in) :: itemsize
        integer(c_int64_t), intent(in) :: extents(ndim)
        type(c_ptr), intent(out) :: array
        integer(c_int) :: status
        integer(c_int64_t) :: strides(ndim)
        integer :: d
        strides(1) = itemsize
        do d = 2, ndim
            strides(d) = strides(d - 1) * extents(d - 1)
        end do
        status = fusor_array_wrap(ctx, data, dtype, ndim, extents, strides, array)
    end function
end module fusor
